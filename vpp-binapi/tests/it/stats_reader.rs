//! The stats segment reader: the parser over byte images (valid layouts, hostile images, and
//! fuzz-style property tests that it always returns: no panic, no hang, no unbounded allocation),
//! the same images through a live memfd mapping (differential), and the socket's error paths.

use std::os::fd::OwnedFd;
use std::time::Duration;

use proptest::prelude::*;
use vpp_binapi::stats::{
    Combined, RetryPolicy, StatValue, StatsClient, StatsError, StatsFilter, SymlinkValue,
    parse_image, parse_image_filtered,
};

const BASE: u64 = 0x7f12_3400_0000;
const ENTRY: usize = 144;

/// Builds segment images the way VPP lays them out, independently of the simulator's writer.
struct Image {
    bytes: Vec<u8>,
    entries: Vec<(u32, u64, String)>,
}

impl Image {
    fn new() -> Self {
        let mut bytes = vec![0u8; 4096];
        bytes[0..8].copy_from_slice(&2u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&BASE.to_ne_bytes());
        bytes[16..24].copy_from_slice(&1u64.to_ne_bytes());
        Self {
            bytes,
            entries: Vec::new(),
        }
    }

    fn ptr(off: usize) -> u64 {
        BASE + off as u64
    }

    /// Appends a vector (8-byte header with `len`, then data) and returns its data pointer.
    fn vector(&mut self, len: u32, data: &[u8]) -> u64 {
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&[0, 3, 0, 0]);
        let off = self.bytes.len();
        self.bytes.extend_from_slice(data);
        Self::ptr(off)
    }

    fn u64s(&mut self, words: &[u64]) -> u64 {
        let data: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        self.vector(words.len() as u32, &data)
    }

    fn simple(&mut self, rows: &[&[u64]]) -> u64 {
        let ptrs: Vec<u64> = rows.iter().map(|r| self.u64s(r)).collect();
        self.u64s(&ptrs)
    }

    fn combined(&mut self, rows: &[&[(u64, u64)]]) -> u64 {
        let ptrs: Vec<u64> = rows
            .iter()
            .map(|r| {
                let words: Vec<u64> = r.iter().flat_map(|(p, b)| [*p, *b]).collect();
                let data: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
                self.vector(r.len() as u32, &data)
            })
            .collect();
        self.u64s(&ptrs)
    }

    fn names(&mut self, names: &[Option<&str>]) -> u64 {
        let ptrs: Vec<u64> = names
            .iter()
            .map(|n| match n {
                Some(s) => {
                    let mut d = s.as_bytes().to_vec();
                    d.push(0);
                    self.vector(d.len() as u32, &d)
                }
                None => 0,
            })
            .collect();
        self.u64s(&ptrs)
    }

    fn entry(&mut self, type_code: u32, value: u64, name: &str) -> usize {
        self.entries.push((type_code, value, name.to_owned()));
        self.entries.len() - 1
    }

    fn symlink(&mut self, target: u32, column: u32, name: &str) -> usize {
        self.entry(6, u64::from(target) | (u64::from(column) << 32), name)
    }

    /// Writes the directory and returns the image (padded by some trailing bytes).
    fn finish(mut self) -> Vec<u8> {
        let mut dir = Vec::new();
        for (t, v, name) in &self.entries {
            let mut e = [0u8; ENTRY];
            e[0..4].copy_from_slice(&t.to_ne_bytes());
            if *t == 6 {
                e[8..12].copy_from_slice(&(*v as u32).to_ne_bytes());
                e[12..16].copy_from_slice(&((*v >> 32) as u32).to_ne_bytes());
            } else {
                e[8..16].copy_from_slice(&v.to_ne_bytes());
            }
            e[16..16 + name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&e);
        }
        let n = self.entries.len() as u32;
        let p = self.vector(n, &dir);
        self.bytes[32..40].copy_from_slice(&p.to_ne_bytes());
        self.bytes.extend_from_slice(&[0u8; 64]);
        self.bytes
    }
}

fn sample() -> Vec<u8> {
    let mut img = Image::new();
    img.entry(1, 1_700_000_000, "/sys/boottime");
    let s = img.simple(&[&[1, 2, 3], &[10, 20, 30]]);
    let simple = img.entry(2, s, "first session packet") as u32;
    let c = img.combined(&[&[(1, 100), (2, 200)], &[(3, 300), (4, 400)]]);
    let combined = img.entry(3, c, "/net/route/to") as u32;
    let n = img.names(&[Some("local0"), None, Some("eth0")]);
    img.entry(4, n, "/if/names");
    img.entry(5, 0, "");
    img.symlink(simple, 2, "/err/x/y");
    img.symlink(combined, 1, "/interfaces/eth0/rx");
    img.entry(9, 42, "/sys/vector_rate");
    img.entry(7, 0, "/sys/histogram");
    img.finish()
}

fn value<'a>(entries: &'a [vpp_binapi::stats::StatEntry], name: &str) -> &'a StatValue {
    &entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .value
}

#[test]
fn valid_image_decodes_every_type() {
    let entries = parse_image(&sample()).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "/sys/boottime",
            "first session packet",
            "/net/route/to",
            "/if/names",
            "/err/x/y",
            "/interfaces/eth0/rx",
            "/sys/vector_rate",
            "/sys/histogram"
        ],
        "EMPTY slot skipped, directory order kept"
    );
    assert_eq!(
        value(&entries, "/sys/boottime"),
        &StatValue::Scalar(1_700_000_000)
    );
    assert_eq!(value(&entries, "/sys/vector_rate"), &StatValue::Gauge(42));
    let StatValue::SimpleCounters(s) = value(&entries, "first session packet") else {
        panic!("not simple")
    };
    assert_eq!(s.per_thread(), &[vec![1, 2, 3], vec![10, 20, 30]]);
    assert_eq!(s.sum_per_index(), vec![11, 22, 33]);
    assert_eq!(s.sum_index(2), 33);
    assert_eq!(s.total(), 66);
    let StatValue::CombinedCounters(c) = value(&entries, "/net/route/to") else {
        panic!("not combined")
    };
    assert_eq!(
        c.sum_per_index(),
        vec![
            Combined {
                packets: 4,
                bytes: 400
            },
            Combined {
                packets: 6,
                bytes: 600
            }
        ]
    );
    assert_eq!(
        c.get(1, 0),
        Some(Combined {
            packets: 3,
            bytes: 300
        })
    );
    assert_eq!(
        value(&entries, "/if/names"),
        &StatValue::NameVector(vec![Some("local0".into()), None, Some("eth0".into())])
    );
    let StatValue::Symlink(l) = value(&entries, "/err/x/y") else {
        panic!("not symlink")
    };
    assert_eq!(
        (l.target.as_str(), l.target_index, l.column),
        ("first session packet", 1, 2)
    );
    assert_eq!(l.value, SymlinkValue::Simple(vec![3, 30]));
    let StatValue::Symlink(l) = value(&entries, "/interfaces/eth0/rx") else {
        panic!("not symlink")
    };
    assert_eq!(
        l.value,
        SymlinkValue::Combined(vec![
            Combined {
                packets: 2,
                bytes: 200
            },
            Combined {
                packets: 4,
                bytes: 400
            }
        ])
    );
    assert_eq!(
        value(&entries, "/sys/histogram"),
        &StatValue::Unsupported { type_code: 7 }
    );
}

#[test]
fn filter_selects_by_regex() {
    let filter = StatsFilter::new(["^/net/route/to$", "session"]).unwrap();
    let entries = parse_image_filtered(&sample(), &filter).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["first session packet", "/net/route/to"]);
    assert!(matches!(
        StatsFilter::new(["("]),
        Err(StatsError::Pattern(_))
    ));
}

#[test]
fn old_and_unknown_layouts_are_refused() {
    let mut img = sample();
    img[0..8].copy_from_slice(&1u64.to_ne_bytes());
    assert!(matches!(
        parse_image(&img),
        Err(StatsError::UnsupportedVersion { version: 1 })
    ));

    // A pre-22.06 v2 header carries an error-vector pointer into the segment at offset 40.
    let mut img = sample();
    let inside = BASE + 512;
    img[40..48].copy_from_slice(&inside.to_ne_bytes());
    assert!(matches!(
        parse_image(&img),
        Err(StatsError::UnsupportedLayout { .. })
    ));

    assert!(matches!(
        parse_image(&[0u8; 20]),
        Err(StatsError::TooSmall { len: 20, .. })
    ));
}

#[test]
fn every_truncation_returns_without_panicking() {
    let img = sample();
    let full = parse_image(&img).unwrap().len();
    let mut errors = 0;
    for len in 0..img.len() {
        match parse_image(&img[..len]) {
            Ok(entries) => assert!(entries.len() <= full),
            Err(_) => errors += 1,
        }
    }
    // Cutting the directory or any vector off must be reported.
    assert!(errors > img.len() / 2, "only {errors} truncations reported");
}

#[test]
fn pointers_outside_the_segment_are_errors() {
    let mut img = Image::new();
    img.entry(2, BASE - 64, "below base");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::PointerOutOfRange {
            what: "simple counter thread vector",
            ..
        })
    ));

    let mut img = Image::new();
    img.entry(3, u64::MAX, "far away");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::PointerOutOfRange { .. })
    ));

    let mut img = sample();
    img[32..40].copy_from_slice(&(BASE + 10_000_000).to_ne_bytes());
    assert!(matches!(
        parse_image(&img),
        Err(StatsError::PointerOutOfRange {
            what: "directory vector",
            ..
        })
    ));

    // A per-thread pointer that leaves the segment.
    let mut img = Image::new();
    let threads = img.u64s(&[BASE + (1 << 40)]);
    img.entry(2, threads, "bad row");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::PointerOutOfRange {
            what: "simple counter vector",
            ..
        })
    ));
}

#[test]
fn huge_lengths_are_rejected_before_allocating() {
    let mut img = Image::new();
    let p = img.vector(u32::MAX, &[0u8; 16]);
    img.entry(2, p, "huge threads");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::VectorOverrun {
            len: 4_294_967_295,
            elem_size: 8,
            ..
        })
    ));

    let mut img = Image::new();
    let row = img.vector(1 << 30, &[0u8; 16]);
    let threads = img.u64s(&[row]);
    img.entry(3, threads, "huge row");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::VectorOverrun { .. })
    ));

    let mut img = Image::new();
    let s = img.vector(1 << 20, b"abc\0");
    let names = img.u64s(&[s]);
    img.entry(4, names, "huge name");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::VectorOverrun { .. })
    ));

    // A directory vector claiming more entries than fit.
    let mut img = sample();
    let dir = u64::from_ne_bytes(img[32..40].try_into().unwrap()) - BASE;
    let hdr = dir as usize - 8;
    img[hdr..hdr + 4].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(matches!(
        parse_image(&img),
        Err(StatsError::VectorOverrun {
            what: "directory vector",
            ..
        })
    ));
}

#[test]
fn aliased_rows_exhaust_the_budget_instead_of_memory() {
    // Every "thread" points at the same large row: the output would be quadratic in the image.
    let mut img = Image::new();
    let row = img.u64s(&vec![7u64; 4096]);
    let threads = img.u64s(&vec![row; 4096]);
    img.entry(2, threads, "aliased");
    let image = img.finish();
    assert!(
        matches!(parse_image(&image), Err(StatsError::BudgetExceeded { .. })),
        "{} bytes",
        image.len()
    );
}

#[test]
fn cyclic_and_bad_symlinks_are_errors() {
    let mut img = Image::new();
    img.symlink(1, 0, "a");
    img.symlink(0, 0, "b");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::SymlinkTooDeep { max: 8, .. })
    ));

    let mut img = Image::new();
    img.symlink(0, 0, "self");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::SymlinkTooDeep { .. })
    ));

    let mut img = Image::new();
    img.entry(1, 5, "scalar");
    img.symlink(0, 0, "to scalar");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::SymlinkTarget { type_code: 1, .. })
    ));

    let mut img = Image::new();
    img.symlink(99, 0, "dangling");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::IndexOutOfRange { index: 99, .. })
    ));

    let mut img = Image::new();
    let s = img.simple(&[&[1, 2], &[3]]);
    img.entry(2, s, "ragged");
    img.symlink(0, 1, "column");
    assert!(matches!(
        parse_image(&img.finish()),
        Err(StatsError::SymlinkColumn {
            column: 1,
            thread: 1,
            len: 1,
            ..
        })
    ));
}

#[test]
fn a_chain_of_symlinks_within_the_limit_resolves() {
    let mut img = Image::new();
    let s = img.simple(&[&[5, 6]]);
    img.entry(2, s, "target");
    img.symlink(0, 1, "first");
    img.symlink(1, 1, "second");
    let entries = parse_image(&img.finish()).unwrap();
    let StatValue::Symlink(l) = value(&entries, "second") else {
        panic!("not symlink")
    };
    assert_eq!(
        (l.target.as_str(), l.value.clone()),
        ("target", SymlinkValue::Simple(vec![6]))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_image(&bytes);
    }

    #[test]
    fn mutated_images_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        words in proptest::collection::vec((any::<prop::sample::Index>(), any::<u64>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut img = sample();
        for (at, b) in edits {
            let i = at.index(img.len());
            img[i] = b;
        }
        // Overwrite whole words too, so pointers and lengths get plausible-looking garbage.
        for (at, w) in words {
            let i = at.index(img.len() / 8) * 8;
            img[i..i + 8].copy_from_slice(&w.to_ne_bytes());
        }
        let len = img.len();
        let _ = parse_image(&img);
        let _ = parse_image(&img[..cut.index(len)]);
    }
}

/// A memfd holding `bytes`, as VPP would pass it.
fn memfd(bytes: &[u8]) -> OwnedFd {
    let fd = rustix::fs::memfd_create("test segment", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let mut written = 0;
    while written < bytes.len() {
        written += rustix::io::pwrite(&fd, &bytes[written..], written as u64).unwrap();
    }
    fd
}

fn live_dump(bytes: &[u8]) -> Result<Vec<vpp_binapi::stats::StatEntry>, StatsError> {
    StatsClient::from_fd(memfd(bytes))?.dump::<&str>(&[])
}

#[test]
fn live_mapping_reads_like_the_image() {
    let img = sample();
    let client = StatsClient::from_fd(memfd(&img)).unwrap();
    assert_eq!(
        client.dump::<&str>(&[]).unwrap(),
        parse_image(&img).unwrap()
    );
    assert_eq!(client.size(), img.len());
    assert_eq!(client.epoch().unwrap(), 1);
    assert_eq!(client.image().unwrap(), img);
    let e = client.get("/net/route/to").unwrap();
    assert_eq!(e.index, 2);
    assert_eq!(
        client.ls(&["^/sys/"]).unwrap(),
        ["/sys/boottime", "/sys/vector_rate", "/sys/histogram"]
    );
}

#[test]
fn live_mapping_handles_misaligned_vectors() {
    // Vectors placed at odd offsets take the byte-wise copy path of the live reader.
    let mut img = Image::new();
    img.bytes.push(0);
    let row: Vec<u8> = [5u64, 6, 7].iter().flat_map(|w| w.to_ne_bytes()).collect();
    let hdr = img.bytes.len();
    img.bytes.extend_from_slice(&3u32.to_ne_bytes());
    img.bytes.extend_from_slice(&[0; 4]);
    let row_ptr = BASE + img.bytes.len() as u64;
    img.bytes.extend_from_slice(&row);
    assert_ne!(hdr % 8, 0);
    img.bytes.push(0);
    img.bytes.extend_from_slice(&1u32.to_ne_bytes());
    img.bytes.extend_from_slice(&[0; 4]);
    let threads = BASE + img.bytes.len() as u64;
    img.bytes.extend_from_slice(&row_ptr.to_ne_bytes());
    img.entry(2, threads, "odd");
    let bytes = img.finish();
    let want = StatValue::SimpleCounters(vpp_binapi::stats::SimpleCounters(vec![vec![5, 6, 7]]));
    assert_eq!(parse_image(&bytes).unwrap()[0].value, want);
    assert_eq!(live_dump(&bytes).unwrap()[0].value, want);
}

#[test]
fn live_mapping_refuses_bad_headers() {
    assert!(matches!(
        StatsClient::from_fd(memfd(&[0u8; 16])),
        Err(StatsError::TooSmall { len: 16, .. })
    ));
    let mut img = sample();
    img[0..8].copy_from_slice(&3u64.to_ne_bytes());
    assert!(matches!(
        StatsClient::from_fd(memfd(&img)),
        Err(StatsError::UnsupportedVersion { version: 3 })
    ));
}

#[test]
fn a_writer_stuck_in_progress_gives_busy() {
    let fd = memfd(&sample());
    let writer = fd.try_clone().unwrap();
    let client = StatsClient::from_fd(fd)
        .unwrap()
        .with_retry_policy(RetryPolicy {
            max_attempts: 5,
            timeout: Duration::from_millis(20),
        });
    assert!(client.get("/sys/boottime").is_ok());
    // The "writer" sets in_progress and never clears it.
    rustix::io::pwrite(&writer, &1u64.to_ne_bytes(), 24).unwrap();
    assert!(matches!(
        client.get("/sys/boottime"),
        Err(StatsError::Busy { .. })
    ));
    assert!(matches!(
        client.dump::<&str>(&[]),
        Err(StatsError::Busy { .. })
    ));
    // Once it finishes (epoch bumped, in_progress cleared), reads succeed again.
    rustix::io::pwrite(&writer, &2u64.to_ne_bytes(), 16).unwrap();
    rustix::io::pwrite(&writer, &0u64.to_ne_bytes(), 24).unwrap();
    assert_eq!(
        client.get("/sys/boottime").unwrap().value,
        StatValue::Scalar(1_700_000_000)
    );
    assert_eq!(client.epoch().unwrap(), 2);
}

#[test]
fn socket_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    assert!(matches!(
        StatsClient::connect_blocking(&missing),
        Err(StatsError::Io { op: "connect", .. })
    ));

    // A server that accepts and closes without passing a descriptor.
    let path = dir.path().join("nofd.sock");
    let listener = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        None,
    )
    .unwrap();
    rustix::net::bind(&listener, &rustix::net::SocketAddrUnix::new(&path).unwrap()).unwrap();
    rustix::net::listen(&listener, 4).unwrap();
    let server = std::thread::spawn(move || {
        let conn = rustix::net::accept(&listener).unwrap();
        drop(conn);
    });
    let got = StatsClient::connect_blocking(&path);
    server.join().unwrap();
    assert!(matches!(got, Err(StatsError::NoFd { .. })), "{got:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The live reader (volatile reads over a mapping) and the image parser agree on any input.
    #[test]
    fn live_and_image_parsers_agree(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        words in proptest::collection::vec((any::<prop::sample::Index>(), any::<u64>()), 0..3),
    ) {
        let mut img = sample();
        for (at, b) in edits {
            let i = at.index(img.len());
            img[i] = b;
        }
        for (at, w) in words {
            let i = at.index(img.len() / 8) * 8;
            img[i..i + 8].copy_from_slice(&w.to_ne_bytes());
        }
        // Keep the writer idle: the image parser ignores `in_progress`, the live reader waits.
        img[24..32].copy_from_slice(&0u64.to_ne_bytes());
        let image = parse_image(&img);
        let live = live_dump(&img);
        prop_assert_eq!(format!("{image:?}"), format!("{live:?}"));
    }
}
