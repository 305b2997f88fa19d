//! The HTTP surface against two real maglevds (each on its demo and its own simulator): the
//! state API, SSE order, replay, resync and pings, admin auth and CSRF, every admin action
//! reaching maglevd and VPP, and a maglevd that goes away and comes back.

use std::time::{Duration, Instant};

use maglev_api::v1::{BackendState, GetBackendRequest, GetFrontendRequest, GetVpplbStateRequest};

use crate::harness::{Frontend, Maglevd, Sse, free_port, request};

const FRONTENDS: [&str; 4] = ["dns", "tls-all-ports", "web", "web-v6"];

fn connected(doc: &serde_json::Value, name: &str) -> bool {
    doc["maglevds"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name))
        .is_some_and(|m| m["connected"] == true && m["frontends"]["web"]["pools"].is_array())
}

fn scope<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["maglevds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_api_shows_every_maglevd_its_frontends_and_vpp() {
    let (a, b) = (
        Maglevd::start(free_port()).await,
        Maglevd::start(free_port()).await,
    );
    let fe = Frontend::start(&[&a.addr, &b.addr], &[], &[]).await;
    let doc = fe
        .wait_json(
            "/view/api/state",
            "both connected with their LB state",
            |d| {
                [&a.addr, &b.addr].iter().all(|n| {
                    connected(d, n)
                        && scope(d, n)["vips"]
                            .as_array()
                            .is_some_and(|v| !v.is_empty())
                })
            },
        )
        .await;
    assert!(doc["epoch"].as_u64().unwrap() > 0);
    for name in [&a.addr, &b.addr] {
        let s = scope(&doc, name);
        let frontends: Vec<&str> = s["frontends"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(frontends, FRONTENDS);
        let web = &s["frontends"]["web"];
        assert_eq!(web["protocol"], "tcp");
        assert_eq!(web["port"], 80);
        assert_eq!(web["table_length"], 1024);
        let pools: Vec<&str> = web["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(pools, ["primary", "fallback"]);
        let members: Vec<&str> = web["pools"][0]["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(members, ["web1", "web2", "web3"]);
        // web3 starts disabled in the example config.
        assert_eq!(web["pools"][0]["backends"][2]["state"], "disabled");
        assert_eq!(s["backends"]["web3"]["enabled"], false);
        assert_eq!(s["vpp"]["connected"], true);
        assert!(!s["version"].as_str().unwrap().is_empty());
    }
    // One maglevd's state, and an unknown one.
    let one = fe.json(&format!("/view/api/state/{}", a.addr)).await;
    assert_eq!(one["name"], a.addr.as_str());
    assert_eq!(
        request(&fe.addr, "GET", "/view/api/state/nope", &[], "")
            .await
            .status,
        404
    );
    let list = fe.json("/view/api/maglevds").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [a.addr.as_str(), b.addr.as_str()]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|m| m["connected"] == true)
    );
    assert_eq!(
        fe.json("/view/api/version").await["name"],
        "maglevd-frontend"
    );
    let health = request(&fe.addr, "GET", "/healthz", &[], "").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let page = request(&fe.addr, "GET", "/view/", &[], "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-mode=\"view\""));
    for asset in [
        "/assets/app.js",
        "/assets/render.js",
        "/assets/app.css",
        "/favicon.ico",
    ] {
        assert_eq!(
            request(&fe.addr, "GET", asset, &[], "").await.status,
            200,
            "{asset}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_is_ordered_replays_after_last_event_id_and_pings() {
    let a = Maglevd::start(free_port()).await;
    let fe = Frontend::start(&[&a.addr], &["--sse-ping-ms", "200"], &[]).await;
    let mut sse = Sse::open(&fe.addr, None).await;
    assert!(
        sse.head
            .to_ascii_lowercase()
            .contains("content-type: text/event-stream")
    );
    assert!(
        sse.head
            .to_ascii_lowercase()
            .contains("x-accel-buffering: no")
    );
    let first = sse.next().await;
    assert_eq!(first.retry.as_deref(), Some("2000"));
    // Events come from the connection, refreshes and the demo; pause and resume a backend to be
    // sure there are some.
    let mut client = a.client().await;
    let mut events = Vec::new();
    let mut pings = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut poked = false;
    while events.len() < 8 || pings < 2 {
        assert!(
            Instant::now() < deadline,
            "got {} events, {pings} pings",
            events.len()
        );
        let frame = sse.next().await;
        if frame.comment.as_deref() == Some("ping") {
            pings += 1;
            if !poked {
                poked = true;
                let r = maglev_api::v1::BackendRequest {
                    name: "web1".into(),
                };
                client.pause_backend(r.clone()).await.unwrap();
                client.resume_backend(r).await.unwrap();
            }
        } else if frame.event.is_some() {
            events.push(frame);
        }
    }
    // Ids are <epoch>-<seq>, one epoch, seqs contiguous and increasing.
    let epoch = events[0]
        .id
        .as_ref()
        .unwrap()
        .split_once('-')
        .unwrap()
        .0
        .to_owned();
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].seq().unwrap(),
            pair[0].seq().unwrap() + 1,
            "{pair:?}"
        );
        assert!(
            pair[1]
                .id
                .as_ref()
                .unwrap()
                .starts_with(&format!("{epoch}-"))
        );
    }
    for e in &events {
        let data: serde_json::Value = serde_json::from_str(e.data.as_deref().unwrap()).unwrap();
        assert_eq!(data["maglevd"], a.addr.as_str(), "{e:?}");
    }
    // Reconnect after the third event: the replay starts with the fourth, in order.
    let mut again = Sse::open(&fe.addr, events[2].id.as_deref()).await;
    for want in &events[3..] {
        let got = again.next_event().await;
        assert_eq!(got.id, want.id);
        assert_eq!(got.event, want.event);
        assert_eq!(got.data, want.data);
    }
    // An id of another epoch (a frontend restart) gets a resync.
    let mut other = Sse::open(&fe.addr, Some("1-5")).await;
    assert_eq!(other.next_event().await.event.as_deref(), Some("resync"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_longer_than_the_replay_window_gets_a_resync() {
    let a = Maglevd::start(free_port()).await;
    let fe = Frontend::start(
        &[&a.addr],
        &["--replay-secs", "1", "--sse-ping-ms", "200"],
        &[],
    )
    .await;
    fe.wait_json("/view/api/state", "connected", |d| connected(d, &a.addr))
        .await;
    let mut sse = Sse::open(&fe.addr, None).await;
    let mut client = a.client().await;
    let r = maglev_api::v1::BackendRequest {
        name: "web1".into(),
    };
    client.pause_backend(r.clone()).await.unwrap();
    let seen = sse.next_event().await;
    drop(sse);
    // While the browser is away, events happen and age out of the 1 s window.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.resume_backend(r.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut back = Sse::open(&fe.addr, seen.id.as_deref()).await;
    let first = back.next_event().await;
    assert_eq!(first.event.as_deref(), Some("resync"), "{first:?}");
    // The resync carries the newest id: reconnecting with it needs no second resync.
    let mut synced = Sse::open(&fe.addr, first.id.as_deref()).await;
    client.pause_backend(r).await.unwrap();
    let next = synced.next_event().await;
    assert_ne!(next.event.as_deref(), Some("resync"), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_needs_basic_auth_and_a_csrf_token_and_is_off_without_a_password() {
    let a = Maglevd::start(free_port()).await;
    let env = [
        ("MAGLEV_FRONTEND_USER", "ops"),
        ("MAGLEV_FRONTEND_PASSWORD", "s3cret"),
    ];
    let mut fe = Frontend::start(&[&a.addr], &[], &env).await;
    let good = "Basic b3BzOnMzY3JldA=="; // ops:s3cret
    let bad = "Basic b3BzOndyb25n"; // ops:wrong
    let none = request(&fe.addr, "GET", "/admin/", &[], "").await;
    assert_eq!(none.status, 401);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        request(&fe.addr, "GET", "/admin/", &[("Authorization", bad)], "")
            .await
            .status,
        401
    );
    let page = request(&fe.addr, "GET", "/admin/", &[("Authorization", good)], "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-mode=\"admin\""));
    let token = page
        .body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 32);
    let path = format!("/admin/api/{}/backends/web1/pause", a.addr);
    let json = ("Content-Type", "application/json");
    // Without auth: 401 even with the token; with auth but no or a wrong token: 403.
    let r = request(
        &fe.addr,
        "POST",
        &path,
        &[json, ("X-CSRF-Token", &token)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request(
        &fe.addr,
        "POST",
        &path,
        &[json, ("Authorization", good)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        &fe.addr,
        "POST",
        &path,
        &[json, ("Authorization", good), ("X-CSRF-Token", "0123")],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403);
    // Nothing reached maglevd.
    let mut client = a.client().await;
    let web1 = client
        .get_backend(GetBackendRequest {
            name: "web1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(web1.state(), BackendState::Paused);
    let r = request(
        &fe.addr,
        "POST",
        &path,
        &[json, ("Authorization", good), ("X-CSRF-Token", &token)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let web1 = client
        .get_backend(GetBackendRequest {
            name: "web1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(web1.state(), BackendState::Paused);
    // The record is written after the reply; wait for the thread that reads the log to see it.
    let action = fe.proc.line("admin-action").await;
    assert!(action.contains("user=ops"), "{action}");

    // No password: /admin/ is off and says how to turn it on.
    let off = Frontend::start(&[&a.addr], &[], &[]).await;
    let r = request(&off.addr, "GET", "/admin/", &[("Authorization", good)], "").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("MAGLEV_FRONTEND_PASSWORD"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_action_reaches_maglevd_and_vpp() {
    let a = Maglevd::start(free_port()).await;
    let env = [("MAGLEV_FRONTEND_PASSWORD", "pw")];
    let fe = Frontend::start(&[&a.addr], &[], &env).await;
    fe.wait_json("/view/api/state", "connected", |d| connected(d, &a.addr))
        .await;
    let auth = "Basic YWRtaW46cHc="; // admin:pw
    let page = request(&fe.addr, "GET", "/admin/", &[("Authorization", auth)], "").await;
    let token = page
        .body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .unwrap()[..32]
        .to_owned();
    let post = |path: String, body: &'static str| {
        let (addr, token) = (fe.addr.clone(), token.clone());
        async move {
            let r = request(
                &addr,
                "POST",
                &path,
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", auth),
                    ("X-CSRF-Token", &token),
                ],
                body,
            )
            .await;
            assert_eq!(r.status, 200, "POST {path}: {}", r.body);
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()
        }
    };
    let base = format!("/admin/api/{}", a.addr);
    let mut client = a.client().await;
    let state_of = |name: &'static str| {
        let mut c = client.clone();
        async move {
            c.get_backend(GetBackendRequest { name: name.into() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    // web1's weight in VPP, through maglevd's view of VPP.
    let vpp_weight = || {
        let mut c = client.clone();
        async move {
            let lb = c
                .get_vpplb_state(GetVpplbStateRequest {})
                .await
                .unwrap()
                .into_inner();
            lb.vips
                .iter()
                .filter(|v| v.frontend == "web")
                .flat_map(|v| v.ases.iter())
                .find(|a| a.backend == "web1")
                .map(|a| a.weight)
        }
    };
    assert_eq!(
        post(format!("{base}/backends/web1/pause"), "").await["state"],
        "paused"
    );
    assert_eq!(state_of("web1").await.state(), BackendState::Paused);
    let deadline = Instant::now() + Duration::from_secs(15);
    while vpp_weight().await != Some(0) {
        assert!(
            Instant::now() < deadline,
            "VPP never got weight 0 for paused web1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        post(format!("{base}/backends/web1/resume"), "").await["name"],
        "web1"
    );
    assert_ne!(state_of("web1").await.state(), BackendState::Paused);
    assert_eq!(
        post(format!("{base}/backends/web1/disable"), "").await["enabled"],
        false
    );
    assert_eq!(state_of("web1").await.state(), BackendState::Disabled);
    assert_eq!(
        post(format!("{base}/backends/web1/enable"), "").await["enabled"],
        true
    );
    assert!(state_of("web1").await.enabled);

    let f = post(
        format!("{base}/weight"),
        r#"{"frontend":"web","pool":"primary","backend":"web2","weight":7}"#,
    )
    .await;
    assert_eq!(f["pools"][0]["backends"][1]["weight_override"], 7);
    let web = client
        .get_frontend(GetFrontendRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(web.pools[0].backends[1].weight_override, Some(7));
    // The frontend's own state follows (the admin action triggers a refetch).
    fe.wait_json(
        &format!("/view/api/state/{}", a.addr),
        "weight override shown",
        |d| d["frontends"]["web"]["pools"][0]["backends"][1]["weight_override"] == 7,
    )
    .await;

    let plan = post(format!("{base}/plan"), r#"{"frontend":"web"}"#).await;
    assert!(plan["ops"].is_array());
    let sync = post(format!("{base}/sync"), r#"{"frontend":"web"}"#).await;
    assert_eq!(sync["ok"], true, "{sync}");
    let preview = post(
        format!("{base}/preview"),
        r#"{"frontend":"web","backend":"web2","kind":"set-weight","weight":100}"#,
    )
    .await;
    assert_eq!(preview["table_length"], 1024);
    assert!(preview["before"].is_array() && preview["after"].is_array());

    // Errors from maglevd come back as HTTP statuses.
    let r = request(
        &fe.addr,
        "POST",
        &format!("{base}/backends/nope/pause"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", auth),
            ("X-CSRF-Token", &token),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maglevd_that_goes_away_shows_disconnected_and_is_reconnected() {
    let port = free_port();
    let mut a = Maglevd::start(port).await;
    let b = Maglevd::start(free_port()).await;
    // A third maglevd that is never there: shown disconnected with its error, blocking nothing.
    let never = format!("127.0.0.1:{}", free_port());
    let fe = Frontend::start(&[&a.addr, &b.addr, &never], &[], &[]).await;
    fe.wait_json("/view/api/state", "both connected", |d| {
        connected(d, &a.addr) && connected(d, &b.addr)
    })
    .await;
    let list = fe.json("/view/api/maglevds").await;
    assert_eq!(list[2]["connected"], false, "{list}");
    assert!(
        list[2]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{list}"
    );
    a.proc.kill();
    let started = Instant::now();
    let doc = fe
        .wait_json("/view/api/maglevds", "a disconnected", |d| {
            d[0]["connected"] == false
        })
        .await;
    assert_eq!(
        doc[1]["connected"], true,
        "the other maglevd is unaffected: {doc}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Requests never hang on the dead one.
    let t = Instant::now();
    fe.json("/view/api/state").await;
    assert!(t.elapsed() < Duration::from_secs(2));
    let a2 = Maglevd::start(port).await;
    fe.wait_json("/view/api/state", "a reconnected", |d| {
        connected(d, &a2.addr)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_ignored_and_sigterm_stops_with_an_open_event_stream() {
    let a = Maglevd::start(free_port()).await;
    let mut fe = Frontend::start(&[&a.addr], &[], &[]).await;
    let mut sse = Sse::open(&fe.addr, None).await;
    assert_eq!(sse.next().await.retry.as_deref(), Some("2000"));
    fe.proc.signal("-HUP");
    fe.proc.line("sighup-ignored").await;
    assert_eq!(fe.proc.wait_exit(Duration::from_millis(300)).await, None);
    assert_eq!(
        request(&fe.addr, "GET", "/healthz", &[], "").await.status,
        200
    );
    fe.proc.signal("-TERM");
    let status = fe
        .proc
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("SIGTERM stops the frontend despite the open stream");
    assert!(status.success(), "{status:?}");
}
