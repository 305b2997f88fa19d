//! The typed model of one `.api.json` file and its parser.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::Error;

/// A primitive wire type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prim {
    /// `u8`
    U8,
    /// `i8`
    I8,
    /// `u16`
    U16,
    /// `i16`
    I16,
    /// `u32`
    U32,
    /// `i32`
    I32,
    /// `u64`
    U64,
    /// `i64`
    I64,
    /// `f64`, little-endian on the wire.
    F64,
    /// `bool`, one byte.
    Bool,
}

impl Prim {
    /// Parses a base type name (`u8`, `i32`, `f64`, `bool`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "u8" => Self::U8,
            "i8" => Self::I8,
            "u16" => Self::U16,
            "i16" => Self::I16,
            "u32" => Self::U32,
            "i32" => Self::I32,
            "u64" => Self::U64,
            "i64" => Self::I64,
            "f64" => Self::F64,
            "bool" => Self::Bool,
            _ => return None,
        })
    }

    /// The type name as in the `.api.json` file and in Rust.
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::U64 => "u64",
            Self::I64 => "i64",
            Self::F64 => "f64",
            Self::Bool => "bool",
        }
    }

    /// Size on the wire in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 => 4,
            Self::U64 | Self::I64 | Self::F64 => 8,
        }
    }

    /// The inclusive value range of an integer type (`None` for `f64` and `bool`).
    pub fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            Self::U8 => (0, u8::MAX.into()),
            Self::I8 => (i8::MIN.into(), i8::MAX.into()),
            Self::U16 => (0, u16::MAX.into()),
            Self::I16 => (i16::MIN.into(), i16::MAX.into()),
            Self::U32 => (0, u32::MAX.into()),
            Self::I32 => (i32::MIN.into(), i32::MAX.into()),
            Self::U64 => (0, u64::MAX.into()),
            Self::I64 => (i64::MIN.into(), i64::MAX.into()),
            Self::F64 | Self::Bool => return None,
        })
    }
}

/// How a field is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `[T, name]`: one value.
    Scalar,
    /// `[T, name, N]` with N > 0: a fixed array, or for `string` a fixed string of N bytes.
    Array(u32),
    /// `[T, name, 0, "count"]`: a VLA whose element count is the earlier field `count`.
    Vla(String),
    /// `[T, name, 0]`: for `string` a variable string (u32 length + bytes); for other types a
    /// legacy VLA running to the end of the message.
    Rest,
}

/// One field of a type, union or message.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field name.
    pub name: String,
    /// The type as written: a base type, `string`, or `vl_api_<name>_t`.
    pub ty: String,
    /// The layout.
    pub shape: Shape,
    /// Field options (`default`, `case`, `discriminator`, ...).
    pub options: Map<String, Value>,
}

impl Field {
    /// The `default` option, if any.
    pub fn default(&self) -> Option<&Value> {
        self.options.get("default")
    }

    /// The Python `repr` used by vppapigen's CRC.
    pub fn crc_repr(&self) -> String {
        match &self.shape {
            Shape::Scalar => format!("['{}', '{}']", self.ty, self.name),
            Shape::Array(n) => format!("['{}', '{}', {n}, None]", self.ty, self.name),
            Shape::Vla(c) => format!("['{}', '{}', 0, '{c}']", self.ty, self.name),
            Shape::Rest => format!("['{}', '{}', 0, None]", self.ty, self.name),
        }
    }
}

/// A struct type (`typedef`) or a union.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDef {
    /// The bare name (no `vl_api_` / `_t`).
    pub name: String,
    /// The fields (union arms for a union).
    pub fields: Vec<Field>,
    /// The comment block, if any.
    pub comment: Option<String>,
}

/// An enum or enumflag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumDef {
    /// The bare name.
    pub name: String,
    /// The named values, in file order.
    pub values: Vec<(String, i64)>,
    /// The integer width (`enumtype`, `u32` if absent).
    pub width: Prim,
    /// Whether this is an `enumflag` (bit set).
    pub flags: bool,
}

/// An alias (`typedef u8 ip4_address[4]`, `typedef u32 interface_index`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasDef {
    /// The bare name.
    pub name: String,
    /// The target type as written.
    pub target: String,
    /// Array length, for array aliases.
    pub length: Option<u32>,
}

/// A message definition.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageDef {
    /// The message name.
    pub name: String,
    /// All fields except `_vl_msg_id`, header fields included.
    pub fields: Vec<Field>,
    /// The CRC written in the file.
    pub crc: u32,
    /// Message options (`deprecated`, `in_progress`, `vat_help`, ...).
    pub options: Map<String, Value>,
    /// The comment block, if any.
    pub comment: Option<String>,
}

/// A service (request and what answers it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDef {
    /// The request message.
    pub request: String,
    /// The reply message (`None` for `"reply": "null"`); for dumps the details message.
    pub reply: Option<String>,
    /// Whether the reply is a stream.
    pub stream: bool,
    /// For cursor services, the streamed details message.
    pub stream_msg: Option<String>,
    /// Events sent after a subscription.
    pub events: Vec<String>,
}

/// One parsed `.api.json` file.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiFile {
    /// The file name, e.g. `lb.api.json`.
    pub file_name: String,
    /// The module name (the `module` key, else the file name without `.api.json`).
    pub module: String,
    /// `options.version`.
    pub version: Option<String>,
    /// `vl_api_version`, the file CRC.
    pub api_crc: Option<u32>,
    /// The imported modules (bare names, from the import paths).
    pub imports: Vec<String>,
    /// Struct types, deduplicated by name, in file order.
    pub types: Vec<TypeDef>,
    /// Unions, deduplicated by name.
    pub unions: Vec<TypeDef>,
    /// Enums and enumflags, deduplicated by name.
    pub enums: Vec<EnumDef>,
    /// Aliases, by name.
    pub aliases: Vec<AliasDef>,
    /// Messages, in file order.
    pub messages: Vec<MessageDef>,
    /// Services, by request name.
    pub services: Vec<ServiceDef>,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, item: &str, reason: impl Into<String>) -> Error {
        Error::Format {
            file: self.file.to_owned(),
            item: item.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The bare type name of a field type `vl_api_<name>_t`, if it has that form.
pub fn bare_type_name(ty: &str) -> Option<&str> {
    ty.strip_prefix("vl_api_")?.strip_suffix("_t")
}

/// The module name of an import path: `"vnet/ip/ip_types.api"` -> `ip_types`.
pub fn import_module(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".json").unwrap_or(base);
    base.strip_suffix(".api").unwrap_or(base)
}

/// Parses one `.api.json` document. `file_name` is used for the module name (when the file
/// has no `module` key) and in errors.
pub fn parse_api_json(file_name: &str, text: &str) -> Result<ApiFile, Error> {
    let root: Value = serde_json::from_str(text).map_err(|source| Error::Json {
        file: file_name.to_owned(),
        source,
    })?;
    let cx = Ctx { file: file_name };
    let obj = root
        .as_object()
        .ok_or_else(|| cx.err("<root>", "expected a json object"))?;
    let module = match obj.get("module") {
        Some(Value::String(m)) => m.clone(),
        _ => import_module(file_name).to_owned(),
    };
    let list = |key: &str| -> Result<Vec<Value>, Error> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(cx.err(key, "expected a list")),
        }
    };
    let map = |key: &str| -> Result<Map<String, Value>, Error> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(cx.err(key, "expected an object")),
        }
    };

    let version = map("options")?
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let api_crc = match obj.get("vl_api_version") {
        Some(Value::String(s)) => {
            Some(parse_hex(s).ok_or_else(|| cx.err("vl_api_version", "not a hex number"))?)
        }
        _ => None,
    };
    let mut imports = Vec::new();
    for v in list("imports")? {
        let s = v
            .as_str()
            .ok_or_else(|| cx.err("imports", "expected strings"))?;
        let m = import_module(s).to_owned();
        if !imports.contains(&m) {
            imports.push(m);
        }
    }

    let mut types: Vec<TypeDef> = Vec::new();
    for v in list("types")? {
        let t = parse_typedef(&cx, &v, "type")?;
        if !types.iter().any(|x| x.name == t.name) {
            types.push(t);
        }
    }
    let mut unions: Vec<TypeDef> = Vec::new();
    for v in list("unions")? {
        let t = parse_typedef(&cx, &v, "union")?;
        if !unions.iter().any(|x| x.name == t.name) {
            unions.push(t);
        }
    }
    let mut enums: Vec<EnumDef> = Vec::new();
    for (key, flags) in [("enums", false), ("enumflags", true)] {
        for v in list(key)? {
            let e = parse_enum(&cx, &v, flags)?;
            if !enums.iter().any(|x| x.name == e.name) {
                enums.push(e);
            }
        }
    }
    let mut aliases = Vec::new();
    for (name, v) in map("aliases")? {
        let item = format!("alias {name}");
        let target = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| cx.err(&item, "missing type"))?
            .to_owned();
        let length = match v.get("length") {
            None => None,
            Some(l) => Some(
                l.as_u64()
                    .and_then(|l| u32::try_from(l).ok())
                    .ok_or_else(|| cx.err(&item, "length is not a u32"))?,
            ),
        };
        aliases.push(AliasDef {
            name,
            target,
            length,
        });
    }
    let mut messages: Vec<MessageDef> = Vec::new();
    for v in list("messages")? {
        let m = parse_message(&cx, &v)?;
        if messages.iter().any(|x| x.name == m.name) {
            return Err(cx.err(&format!("message {}", m.name), "defined twice"));
        }
        messages.push(m);
    }
    let mut services = Vec::new();
    for (request, v) in map("services")? {
        let item = format!("service {request}");
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let reply = match v.get("reply") {
            Some(Value::String(r)) if r == "null" => None,
            Some(Value::String(r)) => Some(r.clone()),
            Some(Value::Null) | None => None,
            Some(_) => return Err(cx.err(&item, "reply is not a string")),
        };
        let events = match v.get("events") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| {
                    e.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| cx.err(&item, "event is not a string"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(cx.err(&item, "events is not a list")),
        };
        services.push(ServiceDef {
            request,
            reply,
            stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
            stream_msg: s("stream_msg"),
            events,
        });
    }

    Ok(ApiFile {
        file_name: file_name.to_owned(),
        module,
        version,
        api_crc,
        imports,
        types,
        unions,
        enums,
        aliases,
        messages,
        services,
    })
}

fn parse_hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?, 16).ok()
}

fn parse_field(cx: &Ctx<'_>, item: &str, v: &Value) -> Result<Field, Error> {
    let a = v
        .as_array()
        .ok_or_else(|| cx.err(item, "field is not a list"))?;
    let (ty, name) = match (a.first(), a.get(1)) {
        (Some(Value::String(t)), Some(Value::String(n))) => (t.clone(), n.clone()),
        _ => return Err(cx.err(item, format!("field {v} must start with a type and a name"))),
    };
    let fitem = || format!("{item}.{name}");
    let mut rest: &[Value] = &a[2..];
    let mut options = Map::new();
    if let Some(Value::Object(o)) = rest.last() {
        options = o.clone();
        rest = &rest[..rest.len() - 1];
    }
    let shape = match rest {
        [] => Shape::Scalar,
        [n] => {
            let n = n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| cx.err(&fitem(), "array length is not a u32"))?;
            if n == 0 { Shape::Rest } else { Shape::Array(n) }
        }
        [n, Value::String(c)] => {
            if n.as_u64() != Some(0) {
                return Err(cx.err(&fitem(), "a vla must have length 0"));
            }
            Shape::Vla(c.clone())
        }
        [_, Value::Null] => {
            let n = rest[0]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| cx.err(&fitem(), "array length is not a u32"))?;
            if n == 0 { Shape::Rest } else { Shape::Array(n) }
        }
        _ => return Err(cx.err(&fitem(), format!("unexpected field shape {v}"))),
    };
    Ok(Field {
        name,
        ty,
        shape,
        options,
    })
}

fn comment_of(m: &Map<String, Value>) -> Option<String> {
    m.get("comment").and_then(Value::as_str).map(str::to_owned)
}

fn parse_typedef(cx: &Ctx<'_>, v: &Value, what: &str) -> Result<TypeDef, Error> {
    let a = v
        .as_array()
        .ok_or_else(|| cx.err(what, "expected a list"))?;
    let name = a
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| cx.err(what, "missing name"))?
        .to_owned();
    let item = format!("{what} {name}");
    let mut fields = Vec::new();
    let mut comment = None;
    for f in &a[1..] {
        match f {
            Value::Object(m) => comment = comment_of(m),
            _ => fields.push(parse_field(cx, &item, f)?),
        }
    }
    Ok(TypeDef {
        name,
        fields,
        comment,
    })
}

fn parse_enum(cx: &Ctx<'_>, v: &Value, flags: bool) -> Result<EnumDef, Error> {
    let a = v
        .as_array()
        .ok_or_else(|| cx.err("enum", "expected a list"))?;
    let name = a
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| cx.err("enum", "missing name"))?
        .to_owned();
    let item = format!("enum {name}");
    let mut values = Vec::new();
    let mut width = Prim::U32;
    for e in &a[1..] {
        match e {
            Value::Object(m) => {
                if let Some(t) = m.get("enumtype").and_then(Value::as_str) {
                    width = Prim::parse(t)
                        .filter(|p| p.int_range().is_some())
                        .ok_or_else(|| cx.err(&item, format!("bad enumtype {t}")))?;
                }
            }
            Value::Array(p) => match (p.first(), p.get(1).and_then(Value::as_i64)) {
                (Some(Value::String(id)), Some(val)) => values.push((id.clone(), val)),
                _ => return Err(cx.err(&item, format!("bad value {e}"))),
            },
            _ => return Err(cx.err(&item, format!("bad value {e}"))),
        }
    }
    let (lo, hi) = width.int_range().unwrap_or((0, 0));
    for (id, val) in &values {
        if i128::from(*val) < lo || i128::from(*val) > hi {
            return Err(cx.err(
                &item,
                format!("value {id} = {val} does not fit {}", width.name()),
            ));
        }
    }
    Ok(EnumDef {
        name,
        values,
        width,
        flags,
    })
}

fn parse_message(cx: &Ctx<'_>, v: &Value) -> Result<MessageDef, Error> {
    let a = v
        .as_array()
        .ok_or_else(|| cx.err("message", "expected a list"))?;
    let name = a
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| cx.err("message", "missing name"))?
        .to_owned();
    let item = format!("message {name}");
    let meta = match a.last() {
        Some(Value::Object(m)) if a.len() >= 2 => m.clone(),
        _ => return Err(cx.err(&item, "missing the crc dict")),
    };
    let crc = meta
        .get("crc")
        .and_then(Value::as_str)
        .and_then(parse_hex)
        .ok_or_else(|| cx.err(&item, "missing or malformed crc"))?;
    let mut fields = Vec::new();
    for f in &a[1..a.len() - 1] {
        fields.push(parse_field(cx, &item, f)?);
    }
    match fields.first() {
        Some(f) if f.name == "_vl_msg_id" => {
            fields.remove(0);
        }
        _ => return Err(cx.err(&item, "first field is not _vl_msg_id")),
    }
    let options = match meta.get("options") {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    Ok(MessageDef {
        name,
        fields,
        crc,
        options,
        comment: comment_of(&meta),
    })
}

/// Every named type a file defines, by bare name.
#[derive(Clone, Copy, Debug)]
pub enum TypeItem<'a> {
    /// A struct.
    Struct(&'a TypeDef),
    /// A union.
    Union(&'a TypeDef),
    /// An enum or enumflag.
    Enum(&'a EnumDef),
    /// An alias.
    Alias(&'a AliasDef),
}

impl ApiFile {
    /// All named types by bare name.
    pub fn type_items(&self) -> BTreeMap<&str, TypeItem<'_>> {
        let mut m = BTreeMap::new();
        for t in &self.types {
            m.entry(t.name.as_str()).or_insert(TypeItem::Struct(t));
        }
        for t in &self.unions {
            m.entry(t.name.as_str()).or_insert(TypeItem::Union(t));
        }
        for e in &self.enums {
            m.entry(e.name.as_str()).or_insert(TypeItem::Enum(e));
        }
        for a in &self.aliases {
            m.entry(a.name.as_str()).or_insert(TypeItem::Alias(a));
        }
        m
    }
}
