//! Rust code emission for one module and for the `mod.rs` registry.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};
use serde_json::Value;

use crate::doc::{self, DocComment};
use crate::model::{
    AliasDef, ApiFile, EnumDef, Field, MessageDef, Prim, ServiceDef, Shape, TypeDef, TypeItem,
    bare_type_name,
};
use crate::{ApiSet, Config, Error};

/// The header class of a message (VPP protocol notes §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Header {
    Request,
    Reply,
    Event,
    Other,
}

impl Header {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Reply => "reply",
            Self::Event => "event",
            Self::Other => "other",
        }
    }
}

/// Classifies a message from its first fields and returns how many header fields to skip.
pub(crate) fn classify(fields: &[Field]) -> (Header, usize) {
    let is = |i: usize, n: &str| {
        fields
            .get(i)
            .is_some_and(|f| f.name == n && f.ty == "u32" && f.shape == Shape::Scalar)
    };
    if is(0, "client_index") && is(1, "context") {
        (Header::Request, 2)
    } else if is(0, "context") {
        (Header::Reply, 1)
    } else if is(0, "client_index") {
        (Header::Event, 1)
    } else {
        (Header::Other, 0)
    }
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized",
    "virtual", "yield", "try", "gen",
];

/// A snake_case Rust identifier for a VPP field or arm name.
pub(crate) fn field_ident(name: &str) -> Ident {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if matches!(s.as_str(), "self" | "super" | "crate" | "_") {
        s.push('_');
    }
    if KEYWORDS.contains(&s.as_str()) {
        Ident::new_raw(&s, Span::call_site())
    } else {
        Ident::new(&s, Span::call_site())
    }
}

/// A CamelCase Rust type name for a VPP type or message name.
pub(crate) fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(cs);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

fn type_ident(name: &str) -> Ident {
    Ident::new(&camel(name), Span::call_site())
}

fn docs(lines: &[String]) -> TokenStream {
    let mut out = TokenStream::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.extend(quote!(#[doc = ""]));
        }
        let l = format!(" {l}");
        out.extend(quote!(#[doc = #l]));
    }
    out
}

fn usize_lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// Properties of a resolved type that the emitter needs.
#[derive(Clone, Copy, Debug)]
struct TInfo {
    /// Minimum (and, if `fixed`, exact) wire size.
    min: usize,
    /// No VLAs or variable strings anywhere.
    fixed: bool,
    /// Can derive `Copy`.
    copy: bool,
    /// Contains an `f64` (no `Eq`/`Hash`).
    float: bool,
    /// Decoding from enough bytes cannot fail (no strings, no VLAs).
    infallible: bool,
}

impl TInfo {
    fn prim(p: Prim) -> Self {
        Self {
            min: p.size(),
            fixed: true,
            copy: true,
            float: p == Prim::F64,
            infallible: true,
        }
    }
}

/// What a field's element type resolves to.
#[derive(Clone)]
enum Elem {
    Prim(Prim),
    Str,
    Named {
        path: TokenStream,
        info: TInfo,
        /// The integer a scalar default is written in, and whether it is an enum newtype.
        scalar: Option<(Prim, bool)>,
    },
}

impl Elem {
    fn info(&self) -> TInfo {
        match self {
            Self::Prim(p) => TInfo::prim(*p),
            Self::Str => TInfo {
                min: 0,
                fixed: false,
                copy: false,
                float: false,
                infallible: false,
            },
            Self::Named { info, .. } => *info,
        }
    }

    fn rust_type(&self) -> TokenStream {
        match self {
            Self::Prim(p) => {
                let i = format_ident!("{}", p.name());
                quote!(#i)
            }
            Self::Str => quote!(String),
            Self::Named { path, .. } => path.clone(),
        }
    }
}

pub(crate) struct ModuleEmitter<'a> {
    set: &'a ApiSet,
    cfg: &'a Config,
    file: &'a ApiFile,
    module: &'a str,
    info_cache: RefCell<BTreeMap<(String, String), TInfo>>,
}

struct FieldsCode {
    decls: Vec<TokenStream>,
    defaults: Vec<TokenStream>,
    derive_default: bool,
    encode: Vec<TokenStream>,
    decode: Vec<TokenStream>,
    idents: Vec<Ident>,
    len_expr: TokenStream,
    min: usize,
    fixed: bool,
    copy: bool,
    float: bool,
    infallible: bool,
}

impl<'a> ModuleEmitter<'a> {
    pub(crate) fn new(set: &'a ApiSet, cfg: &'a Config, module: &'a str) -> Result<Self, Error> {
        let file = set.get(module).ok_or_else(|| Error::MissingModule {
            module: module.to_owned(),
            imported_by: None,
        })?;
        Ok(Self {
            set,
            cfg,
            file,
            module,
            info_cache: RefCell::new(BTreeMap::new()),
        })
    }

    fn err_unknown(&self, item: &str, ty: &str) -> Error {
        Error::UnknownType {
            file: self.file.file_name.clone(),
            item: item.to_owned(),
            type_name: ty.to_owned(),
        }
    }

    fn unsupported(&self, item: &str, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            file: self.file.file_name.clone(),
            item: item.to_owned(),
            reason: reason.into(),
        }
    }

    fn codec(&self) -> TokenStream {
        self.cfg
            .codec_path
            .parse()
            .unwrap_or_else(|_| quote!(crate::codec))
    }

    /// The path of type `name` as seen from module `from`, and the owning module.
    fn type_path(&self, from: &str, name: &str) -> Option<(TokenStream, String)> {
        let owner = self.set.owner_of(from, name)?;
        let id = type_ident(name);
        if owner == self.module {
            Some((quote!(#id), owner.to_owned()))
        } else {
            let base: TokenStream = self.cfg.gen_path.parse().ok()?;
            let m = format_ident!("{}", owner);
            Some((quote!(#base::#m::#id), owner.to_owned()))
        }
    }

    /// Resolves a field type as seen from module `from`.
    fn elem(&self, from: &str, item: &str, ty: &str) -> Result<Elem, Error> {
        if ty == "string" {
            return Ok(Elem::Str);
        }
        if let Some(p) = Prim::parse(ty) {
            return Ok(Elem::Prim(p));
        }
        let name = bare_type_name(ty).ok_or_else(|| self.err_unknown(item, ty))?;
        let (path, owner) = self
            .type_path(from, name)
            .ok_or_else(|| self.err_unknown(item, ty))?;
        let info = self.info(&owner, name, item, 0)?;
        let scalar = self.scalar_of(&owner, name, 0);
        Ok(Elem::Named { path, info, scalar })
    }

    /// For enums and aliases of integers: the underlying integer and whether it is an enum.
    fn scalar_of(&self, owner: &str, name: &str, depth: u32) -> Option<(Prim, bool)> {
        if depth > 16 {
            return None;
        }
        let f = self.set.get(owner)?;
        match f.type_items().get(name)? {
            TypeItem::Enum(e) => Some((e.width, true)),
            TypeItem::Alias(a) if a.length.is_none() => {
                if let Some(p) = Prim::parse(&a.target) {
                    return Some((p, false));
                }
                let inner = bare_type_name(&a.target)?;
                let o = self.set.owner_of(owner, inner)?;
                self.scalar_of(o, inner, depth + 1)
            }
            _ => None,
        }
    }

    fn info(&self, owner: &str, name: &str, item: &str, depth: u32) -> Result<TInfo, Error> {
        let key = (owner.to_owned(), name.to_owned());
        if let Some(i) = self.info_cache.borrow().get(&key) {
            return Ok(*i);
        }
        if depth > 32 {
            return Err(self.unsupported(item, format!("type {name} nests too deeply (cycle?)")));
        }
        let f = self
            .set
            .get(owner)
            .ok_or_else(|| self.err_unknown(item, name))?;
        let items = f.type_items();
        let def = items
            .get(name)
            .ok_or_else(|| self.err_unknown(item, name))?;
        let elem_info = |ty: &str| -> Result<TInfo, Error> {
            if ty == "string" {
                return Ok(Elem::Str.info());
            }
            if let Some(p) = Prim::parse(ty) {
                return Ok(TInfo::prim(p));
            }
            let n = bare_type_name(ty).ok_or_else(|| self.err_unknown(item, ty))?;
            let o = self
                .set
                .owner_of(owner, n)
                .ok_or_else(|| self.err_unknown(item, ty))?;
            self.info(o, n, item, depth + 1)
        };
        let info = match def {
            TypeItem::Enum(e) => TInfo::prim(e.width),
            TypeItem::Alias(a) => {
                let e = elem_info(&a.target)?;
                match a.length {
                    None => e,
                    Some(n) => TInfo {
                        min: e.min * n as usize,
                        ..e
                    },
                }
            }
            TypeItem::Union(u) => {
                let mut size = 0;
                for arm in &u.fields {
                    let e = elem_info(&arm.ty)?;
                    if !e.fixed || arm.ty == "string" || arm.shape != Shape::Scalar {
                        return Err(self.unsupported(
                            &format!("union {}.{}", u.name, arm.name),
                            "union arms must be fixed-size scalars",
                        ));
                    }
                    size = size.max(e.min);
                }
                TInfo {
                    min: size,
                    fixed: true,
                    copy: true,
                    float: false,
                    infallible: true,
                }
            }
            TypeItem::Struct(s) => {
                let mut t = TInfo {
                    min: 0,
                    fixed: true,
                    copy: true,
                    float: false,
                    infallible: true,
                };
                for fld in &s.fields {
                    let e = elem_info(&fld.ty)?;
                    let is_str = fld.ty == "string";
                    t.float |= e.float;
                    t.infallible &= e.infallible && !is_str;
                    t.copy &= e.copy && !is_str;
                    match &fld.shape {
                        Shape::Scalar => {
                            t.min += e.min;
                            t.fixed &= e.fixed;
                        }
                        Shape::Array(n) => {
                            t.min += if is_str {
                                *n as usize
                            } else {
                                e.min * *n as usize
                            };
                            t.fixed &= is_str || e.fixed;
                        }
                        Shape::Vla(_) | Shape::Rest => {
                            if is_str {
                                t.min += 4;
                            }
                            t.fixed = false;
                            t.copy = false;
                            t.infallible = false;
                        }
                    }
                }
                t
            }
        };
        self.info_cache.borrow_mut().insert(key, info);
        Ok(info)
    }

    fn default_expr(
        &self,
        item: &str,
        f: &Field,
        elem: &Elem,
    ) -> Result<Option<TokenStream>, Error> {
        let Some(v) = f.default() else {
            return Ok(None);
        };
        let bad =
            |why: &str| self.unsupported(item, format!("default {v} of field {}: {why}", f.name));
        if f.shape != Shape::Scalar {
            return Err(bad("defaults are only supported on scalars"));
        }
        let (prim, path) = match elem {
            Elem::Prim(p) => (*p, None),
            Elem::Named {
                scalar: Some((p, is_enum)),
                path,
                ..
            } => (*p, is_enum.then(|| path.clone())),
            Elem::Str => {
                let s = v.as_str().ok_or_else(|| bad("not a string"))?;
                if s.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(quote!(String::from(#s))));
            }
            Elem::Named { .. } => return Err(bad("the type is not a scalar")),
        };
        let lit = match prim {
            Prim::Bool => {
                let b = match v {
                    Value::Bool(b) => *b,
                    Value::String(s) if s == "true" => true,
                    Value::String(s) if s == "false" => false,
                    Value::Number(n) if n.as_u64() == Some(1) => true,
                    Value::Number(n) if n.as_u64() == Some(0) => false,
                    _ => return Err(bad("not a bool")),
                };
                if !b {
                    return Ok(None);
                }
                quote!(true)
            }
            Prim::F64 => {
                let x = v.as_f64().ok_or_else(|| bad("not a number"))?;
                if x == 0.0 {
                    return Ok(None);
                }
                let l = Literal::f64_unsuffixed(x);
                quote!(#l)
            }
            p => {
                let x: i128 = if let Some(i) = v.as_i64() {
                    i.into()
                } else if let Some(u) = v.as_u64() {
                    u.into()
                } else {
                    return Err(bad("not an integer"));
                };
                let (lo, hi) = p.int_range().unwrap_or((0, 0));
                if x < lo || x > hi {
                    return Err(bad("out of range"));
                }
                if x == 0 {
                    return Ok(None);
                }
                let l = Literal::i128_unsuffixed(x);
                if x < 0 { quote!(-#l) } else { quote!(#l) }
            }
        };
        Ok(Some(match path {
            Some(p) => quote!(#p(#lit)),
            None => lit,
        }))
    }

    /// Emits declarations and codec statements for a list of body fields.
    fn fields(
        &self,
        item: &str,
        label_prefix: Option<&str>,
        fields: &[Field],
        doc: &DocComment,
    ) -> Result<FieldsCode, Error> {
        let codec = self.codec();
        let mut counts: BTreeMap<&str, &str> = BTreeMap::new(); // count field -> vla field
        for f in fields {
            if let Shape::Vla(c) = &f.shape {
                if counts.insert(c.as_str(), f.name.as_str()).is_some() {
                    return Err(
                        self.unsupported(item, format!("count field {c} is used by two vlas"))
                    );
                }
                let pos_c = fields.iter().position(|x| &x.name == c);
                let pos_f = fields.iter().position(|x| x.name == f.name);
                match (pos_c, pos_f) {
                    (Some(a), Some(b)) if a < b => {}
                    _ => {
                        return Err(Error::Format {
                            file: self.file.file_name.clone(),
                            item: format!("{item}.{}", f.name),
                            reason: format!("vla count field {c} is not an earlier field"),
                        });
                    }
                }
            }
        }
        let mut fc = FieldsCode {
            decls: vec![],
            defaults: vec![],
            derive_default: true,
            encode: vec![],
            decode: vec![],
            idents: vec![],
            len_expr: TokenStream::new(),
            min: 0,
            fixed: true,
            copy: true,
            float: false,
            infallible: true,
        };
        let mut const_len = 0usize;
        let mut dyn_terms: Vec<TokenStream> = vec![];
        let mut seen = BTreeSet::new();
        let mut count_max: BTreeMap<String, Literal> = BTreeMap::new();
        for f in fields {
            let id = field_ident(&f.name);
            if !seen.insert(id.to_string()) {
                return Err(self.unsupported(item, format!("two fields named {}", f.name)));
            }
            let label = match label_prefix {
                Some(p) => format!("{p}.{}", f.name),
                None => f.name.clone(),
            };
            let fitem = format!("{item}.{}", f.name);
            let elem = self.elem(self.module, &fitem, &f.ty)?;
            let ei = elem.info();
            let ty = elem.rust_type();
            fc.float |= ei.float;

            // count fields are not struct fields
            if let Some(vla) = counts.get(f.name.as_str()) {
                let Elem::Prim(p) = elem.clone().into_count() else {
                    return Err(self.unsupported(&fitem, "vla count field is not an integer"));
                };
                let (_, hi) = p
                    .int_range()
                    .filter(|_| p != Prim::Bool && p != Prim::F64)
                    .ok_or_else(|| self.unsupported(&fitem, "vla count field is not an integer"))?;
                let hi = u64::try_from(hi.min(i128::from(u64::MAX))).unwrap_or(u64::MAX);
                let hi = Literal::u64_suffixed(hi);
                count_max.insert(f.name.clone(), hi.clone());
                let vla_id = field_ident(vla);
                let pty = format_ident!("{}", p.name());
                fc.encode.push(quote! {
                    let #id = #codec::vla_count(self.#vla_id.len(), #hi);
                    #codec::Wire::encode(&(#id as #pty), out);
                });
                fc.decode.push(quote! {
                    let #id = <#pty as #codec::Wire>::decode(r, #label)?;
                });
                const_len += p.size();
                fc.min += p.size();
                continue;
            }

            let is_str = matches!(elem, Elem::Str);
            let is_u8 = matches!(elem, Elem::Prim(Prim::U8));
            let mut doc_lines = vec![match doc.params.get(&f.name) {
                Some(t) => doc::one_line(t),
                None if f.name == "retval" && f.ty == "i32" => {
                    "Return value: 0 on success, a negative VPP API error code otherwise."
                        .to_owned()
                }
                None => format!("The `{}` field.", doc::code(&f.name)),
            }];
            let field_ty;
            let mut attrs = TokenStream::new();
            if matches!(f.shape, Shape::Scalar)
                && (matches!(elem, Elem::Prim(Prim::F64))
                    || matches!(
                        &elem,
                        Elem::Named {
                            scalar: Some((Prim::F64, _)),
                            ..
                        }
                    ))
            {
                attrs.extend(arbitrary_with_attr(&codec, quote!(f64_not_nan)));
            }
            match &f.shape {
                Shape::Scalar => {
                    if is_str {
                        return Err(self.unsupported(&fitem, "string without a length"));
                    }
                    field_ty = ty.clone();
                    fc.encode
                        .push(quote!(#codec::Wire::encode(&self.#id, out);));
                    fc.decode
                        .push(quote!(let #id = <#ty as #codec::Wire>::decode(r, #label)?;));
                    if ei.fixed {
                        const_len += ei.min;
                    } else {
                        dyn_terms.push(quote!(#codec::Wire::wire_len(&self.#id)));
                    }
                    fc.min += ei.min;
                    fc.fixed &= ei.fixed;
                    fc.copy &= ei.copy;
                    fc.infallible &= ei.infallible;
                }
                Shape::Array(n) => {
                    let n_us = *n as usize;
                    let nl = usize_lit(n_us);
                    if is_str {
                        field_ty = quote!(String);
                        attrs.extend(arbitrary_with_attr(&codec, quote!(fixed_string::<#nl>)));
                        fc.encode
                            .push(quote!(#codec::put_fixed_string(out, &self.#id, #nl);));
                        fc.decode
                            .push(quote!(let #id = r.fixed_string(#nl, #label)?;));
                        const_len += n_us;
                        fc.min += n_us;
                        fc.copy = false;
                        fc.infallible = false;
                        doc_lines.push(format!(
                            "Fixed string of {n_us} bytes on the wire: at most {} bytes are sent, longer values are truncated.",
                            n_us.saturating_sub(1)
                        ));
                    } else if is_u8 {
                        field_ty = quote!([u8; #nl]);
                        attrs.extend(serde_array_attr(&self.cfg.codec_path));
                        fc.encode.push(quote!(out.extend_from_slice(&self.#id);));
                        fc.decode.push(quote!(let #id = r.array::<#nl>(#label)?;));
                        const_len += n_us;
                        fc.min += n_us;
                        if n_us > 32 {
                            fc.derive_default = false;
                        }
                    } else {
                        field_ty = quote!([#ty; #nl]);
                        attrs.extend(serde_array_attr(&self.cfg.codec_path));
                        fc.encode.push(quote! {
                            for e in &self.#id {
                                #codec::Wire::encode(e, out);
                            }
                        });
                        fc.decode
                            .push(quote!(let #id = r.fixed_array::<#ty, #nl>(#label)?;));
                        if ei.fixed {
                            const_len += ei.min * n_us;
                        } else {
                            dyn_terms.push(
                                quote!(self.#id.iter().map(#codec::Wire::wire_len).sum::<usize>()),
                            );
                        }
                        fc.min += ei.min * n_us;
                        fc.fixed &= ei.fixed;
                        fc.copy &= ei.copy;
                        fc.infallible &= ei.infallible;
                        if n_us > 32 {
                            fc.derive_default = false;
                        }
                    }
                }
                Shape::Vla(c) => {
                    let cid = field_ident(c);
                    if is_str {
                        return Err(self.unsupported(&fitem, "string with a count field"));
                    }
                    let cf = fields.iter().find(|x| &x.name == c);
                    let cty = cf.map(|x| x.ty.as_str()).unwrap_or("u32");
                    let count_to_u64 = match Prim::parse(cty) {
                        Some(Prim::U8 | Prim::U16 | Prim::U32 | Prim::U64) => {
                            quote!(u64::from(#cid))
                        }
                        _ => quote!(u64::try_from(#cid).unwrap_or(u64::MAX)),
                    };
                    fc.fixed = false;
                    fc.copy = false;
                    fc.infallible = false;
                    let vmax = count_max
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| Literal::u64_suffixed(u64::MAX));
                    attrs.extend(arbitrary_with_attr(&codec, quote!(vla::<_, #vmax>)));
                    doc_lines.push(format!(
                        "Variable-length array: its count field `{c}` is not a struct field; the encoder writes it from this vector's length (elements beyond the count type's maximum are not encoded)."
                    ));
                    if is_u8 {
                        field_ty = quote!(Vec<u8>);
                        fc.encode
                            .push(quote!(out.extend_from_slice(&self.#id[..#cid as usize]);));
                        fc.decode
                            .push(quote!(let #id = r.vla_u8(#count_to_u64, #label)?;));
                        let max = count_max
                            .get(c)
                            .cloned()
                            .unwrap_or_else(|| Literal::u64_suffixed(u64::MAX));
                        dyn_terms.push(quote!(#codec::vla_count(self.#id.len(), #max) as usize));
                    } else {
                        field_ty = quote!(Vec<#ty>);
                        fc.encode.push(quote! {
                            for e in self.#id.iter().take(#cid as usize) {
                                #codec::Wire::encode(e, out);
                            }
                        });
                        fc.decode
                            .push(quote!(let #id = r.vla::<#ty>(#count_to_u64, #label)?;));
                        let max = count_max
                            .get(c)
                            .cloned()
                            .unwrap_or_else(|| Literal::u64_suffixed(u64::MAX));
                        dyn_terms.push(if ei.fixed {
                            let s = usize_lit(ei.min);
                            quote!(#codec::vla_count(self.#id.len(), #max) as usize * #s)
                        } else {
                            quote!(self.#id.iter().take(#codec::vla_count(self.#id.len(), #max) as usize).map(#codec::Wire::wire_len).sum::<usize>())
                        });
                    }
                }
                Shape::Rest => {
                    fc.fixed = false;
                    fc.copy = false;
                    fc.infallible = false;
                    if is_str {
                        field_ty = quote!(String);
                        fc.encode
                            .push(quote!(#codec::put_var_string(out, &self.#id);));
                        fc.decode.push(quote!(let #id = r.var_string(#label)?;));
                        dyn_terms.push(quote!(#codec::var_string_len(&self.#id)));
                        fc.min += 4;
                        doc_lines.push(
                            "Variable string: a u32 byte count then the bytes, no NUL.".to_owned(),
                        );
                    } else if is_u8 {
                        field_ty = quote!(Vec<u8>);
                        fc.encode.push(quote!(out.extend_from_slice(&self.#id);));
                        fc.decode
                            .push(quote!(let #id = r.vla_u8(r.remaining() as u64, #label)?;));
                        dyn_terms.push(quote!(self.#id.len()));
                        doc_lines.push("Runs to the end of the message.".to_owned());
                    } else {
                        field_ty = quote!(Vec<#ty>);
                        fc.encode.push(quote! {
                            for e in &self.#id {
                                #codec::Wire::encode(e, out);
                            }
                        });
                        fc.decode
                            .push(quote!(let #id = r.rest_vla::<#ty>(#label)?;));
                        dyn_terms.push(
                            quote!(self.#id.iter().map(#codec::Wire::wire_len).sum::<usize>()),
                        );
                        doc_lines.push("Runs to the end of the message.".to_owned());
                    }
                }
            }
            let def = self.default_expr(&fitem, f, &elem)?;
            if def.is_some() {
                fc.derive_default = false;
                let v = match f.default() {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                doc_lines.push(format!(
                    "Default (applied by `Default::default()`): `{}`.",
                    doc::code(&v)
                ));
            }
            let init = match (&def, &f.shape) {
                (Some(d), _) => d.clone(),
                (None, Shape::Array(n)) if !is_str && *n > 32 => {
                    if is_u8 {
                        let nl = usize_lit(*n as usize);
                        quote!([0u8; #nl])
                    } else {
                        quote!(std::array::from_fn(|_| Default::default()))
                    }
                }
                _ => quote!(Default::default()),
            };
            fc.defaults.push(quote!(#id: #init));
            let d = docs(&doc_lines);
            fc.decls.push(quote!(#d #attrs pub #id: #field_ty));
            fc.idents.push(id);
        }
        let c = usize_lit(const_len);
        fc.len_expr = match (const_len, dyn_terms.is_empty()) {
            (_, true) => quote!(#c),
            (0, false) => quote!(#(#dyn_terms)+*),
            (_, false) => quote!(#c #(+ #dyn_terms)*),
        };
        Ok(fc)
    }
}

impl Elem {
    /// For a count field: the integer type it is encoded as.
    fn into_count(self) -> Self {
        match self {
            Self::Named {
                scalar: Some((p, _)),
                ..
            } => Self::Prim(p),
            e => e,
        }
    }
}

fn derives(copy: bool, float: bool, default: bool) -> TokenStream {
    let mut d = vec![quote!(Clone)];
    if copy {
        d.push(quote!(Copy));
    }
    d.push(quote!(Debug));
    if default {
        d.push(quote!(Default));
    }
    d.push(quote!(PartialEq));
    if !float {
        d.push(quote!(Eq));
        d.push(quote!(Hash));
    }
    let extra = feature_derives();
    quote!(#[derive(#(#d),*)] #extra)
}

fn option_lines(options: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out = vec![];
    for (k, v) in options {
        let v = match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let line = match k.as_str() {
            "deprecated" if v.is_empty() => "Deprecated.".to_owned(),
            "deprecated" => format!("Deprecated since {}.", doc::one_line(&v)),
            "in_progress" => "Marked in progress: may change.".to_owned(),
            "status" => format!("Status: {}.", doc::one_line(&v)),
            "replaced_by" => format!("Replaced by `{}`.", doc::code(&v)),
            "vat_help" => format!("VAT help: `{}`.", v.replace('`', "'")),
            other if v.is_empty() => format!("Option `{}`.", doc::code(other)),
            other => format!("Option `{}`: {}.", doc::code(other), doc::one_line(&v)),
        };
        out.push(line);
    }
    out
}

impl ModuleEmitter<'_> {
    fn emit_enum(&self, e: &EnumDef) -> TokenStream {
        let codec = self.codec();
        let id = type_ident(&e.name);
        let w = format_ident!("{}", e.width.name());
        let kind = if e.flags { "enumflag" } else { "enum" };
        let d = docs(&[format!(
            "VPP {kind} `{}` ({} on the wire). A newtype so that unknown values decode without loss.",
            doc::code(&e.name),
            e.width.name()
        )]);
        let mut consts = vec![];
        let mut arms = vec![];
        let mut seen_vals = BTreeSet::new();
        let mut values = vec![];
        for (name, v) in &e.values {
            let cid = Ident::new(&sanitize_const(name), Span::call_site());
            let lit = Literal::i128_unsuffixed((*v).into());
            let lit = if *v < 0 { quote!(-#lit) } else { quote!(#lit) };
            let cd = format!(" `{}` = {v}.", doc::code(name));
            consts.push(quote!(#[doc = #cd] pub const #cid: Self = Self(#lit);));
            if seen_vals.insert(*v) {
                arms.push(quote!(#lit => Some(#name),));
            }
            values.push(quote!((#name, Self::#cid)));
        }
        let flags_impl = if e.flags {
            quote! {
                impl #id {
                    /// No bits set.
                    pub const fn empty() -> Self {
                        Self(0)
                    }
                    /// The raw bits.
                    pub const fn bits(self) -> #w {
                        self.0
                    }
                    /// Whether every bit of `other` is set in `self`.
                    pub const fn contains(self, other: Self) -> bool {
                        self.0 & other.0 == other.0
                    }
                    /// Whether no bit is set.
                    pub const fn is_empty(self) -> bool {
                        self.0 == 0
                    }
                }
                impl std::ops::BitOr for #id {
                    type Output = Self;
                    fn bitor(self, rhs: Self) -> Self {
                        Self(self.0 | rhs.0)
                    }
                }
                impl std::ops::BitOrAssign for #id {
                    fn bitor_assign(&mut self, rhs: Self) {
                        self.0 |= rhs.0;
                    }
                }
                impl std::ops::BitAnd for #id {
                    type Output = Self;
                    fn bitand(self, rhs: Self) -> Self {
                        Self(self.0 & rhs.0)
                    }
                }
                impl std::ops::BitAndAssign for #id {
                    fn bitand_assign(&mut self, rhs: Self) {
                        self.0 &= rhs.0;
                    }
                }
                impl std::ops::Not for #id {
                    type Output = Self;
                    fn not(self) -> Self {
                        Self(!self.0)
                    }
                }
                impl std::fmt::Debug for #id {
                    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        if let Some(n) = self.name() {
                            return f.write_str(n);
                        }
                        let mut rest = self.0;
                        let mut first = true;
                        f.write_str(concat!(stringify!(#id), "("))?;
                        for (n, v) in Self::VALUES {
                            if v.0 != 0 && rest & v.0 == v.0 {
                                if !first {
                                    f.write_str(" | ")?;
                                }
                                f.write_str(n)?;
                                rest &= !v.0;
                                first = false;
                            }
                        }
                        if rest != 0 || first {
                            if !first {
                                f.write_str(" | ")?;
                            }
                            write!(f, "{rest:#x}")?;
                        }
                        f.write_str(")")
                    }
                }
            }
        } else {
            quote! {
                impl std::fmt::Debug for #id {
                    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        match self.name() {
                            Some(n) => f.write_str(n),
                            None => write!(f, concat!(stringify!(#id), "({})"), self.0),
                        }
                    }
                }
            }
        };
        let size = usize_lit(e.width.size());
        let extra = feature_derives();
        quote! {
            #d
            #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
            #extra
            pub struct #id(pub #w);
            impl #id {
                #(#consts)*
                /// Every named value, in definition order.
                pub const VALUES: &'static [(&'static str, Self)] = &[#(#values),*];
                /// The VPP name of this value, if it is a named value.
                pub const fn name(self) -> Option<&'static str> {
                    match self.0 {
                        #(#arms)*
                        _ => None,
                    }
                }
            }
            impl From<#w> for #id {
                fn from(v: #w) -> Self {
                    Self(v)
                }
            }
            impl From<#id> for #w {
                fn from(v: #id) -> Self {
                    v.0
                }
            }
            #flags_impl
            impl #codec::Wire for #id {
                const MIN_WIRE_SIZE: usize = #size;
                #[inline]
                fn encode(&self, out: &mut Vec<u8>) {
                    #codec::Wire::encode(&self.0, out);
                }
                #[inline]
                fn wire_len(&self) -> usize {
                    #size
                }
                #[inline]
                fn decode(r: &mut #codec::Reader<'_>, field: &'static str) -> Result<Self, #codec::DecodeError> {
                    Ok(Self(<#w as #codec::Wire>::decode(r, field)?))
                }
            }
        }
    }

    fn emit_alias(&self, a: &AliasDef) -> Result<TokenStream, Error> {
        let codec = self.codec();
        let item = format!("alias {}", a.name);
        let id = type_ident(&a.name);
        let elem = self.elem(self.module, &item, &a.target)?;
        if matches!(elem, Elem::Str) {
            return Err(self.unsupported(&item, "string aliases"));
        }
        let ty = elem.rust_type();
        let ei = elem.info();
        match a.length {
            None => {
                let d = docs(&[format!(
                    "VPP alias `{}` of `{}`.",
                    doc::code(&a.name),
                    doc::code(&a.target)
                )]);
                Ok(quote!(#d pub type #id = #ty;))
            }
            Some(n) => {
                let d = docs(&[format!(
                    "VPP alias `{}`: `{}[{n}]`.",
                    doc::code(&a.name),
                    doc::code(&a.target)
                )]);
                let nl = usize_lit(n as usize);
                let is_u8 = matches!(elem, Elem::Prim(Prim::U8));
                // `[T; N]: Default` only for N <= 32
                let small = n <= 32;
                let derive = derives(ei.copy, ei.float, small);
                let sa = serde_array_attr(&self.cfg.codec_path);
                let size = usize_lit(ei.min * n as usize);
                let (enc, dec, def) = if is_u8 {
                    (
                        quote!(out.extend_from_slice(&self.0);),
                        quote!(Ok(Self(r.array::<#nl>(field)?))),
                        quote!(Self([0u8; #nl])),
                    )
                } else {
                    (
                        quote!(for e in &self.0 { #codec::Wire::encode(e, out); }),
                        quote!(Ok(Self(r.fixed_array::<#ty, #nl>(field)?))),
                        quote!(Self(std::array::from_fn(|_| Default::default()))),
                    )
                };
                let len = if ei.fixed {
                    quote!(#size)
                } else {
                    quote!(self.0.iter().map(#codec::Wire::wire_len).sum::<usize>())
                };
                let def = if small {
                    TokenStream::new()
                } else {
                    quote! {
                        impl Default for #id {
                            fn default() -> Self {
                                #def
                            }
                        }
                    }
                };
                Ok(quote! {
                    #d
                    #derive
                    pub struct #id(#sa pub [#ty; #nl]);
                    #def
                    impl #codec::Wire for #id {
                        const MIN_WIRE_SIZE: usize = #size;
                        #[inline]
                        fn encode(&self, out: &mut Vec<u8>) {
                            #enc
                        }
                        #[inline]
                        fn wire_len(&self) -> usize {
                            #len
                        }
                        #[inline]
                        fn decode(r: &mut #codec::Reader<'_>, field: &'static str) -> Result<Self, #codec::DecodeError> {
                            #dec
                        }
                    }
                })
            }
        }
    }

    fn emit_union(&self, u: &TypeDef) -> Result<TokenStream, Error> {
        let codec = self.codec();
        let item = format!("union {}", u.name);
        let id = type_ident(&u.name);
        let info = self.info(self.module, &u.name, &item, 0)?;
        let n = usize_lit(info.min);
        let dc = u.comment.as_deref().map(doc::parse).unwrap_or_default();
        let mut lines: Vec<String> = dc.paragraphs.iter().map(|p| doc::one_line(p)).collect();
        if lines.is_empty() {
            lines.push(format!("VPP union `{}`.", doc::code(&u.name)));
        }
        lines.push(format!(
            "Held as its {} raw wire bytes; use the per-arm accessors and constructors.",
            info.min
        ));
        let d = docs(&lines);
        let name = &u.name;
        let mut methods = vec![];
        for arm in &u.fields {
            let aitem = format!("{item}.{}", arm.name);
            let elem = self.elem(self.module, &aitem, &arm.ty)?;
            let ty = elem.rust_type();
            let getter = field_ident(&arm.name);
            let plain = getter.to_string().trim_start_matches("r#").to_owned();
            let from = format_ident!("from_{}", plain);
            let set = format_ident!("set_{}", plain);
            let label = format!("{name}.{}", arm.name);
            let adoc = match dc.params.get(&arm.name) {
                Some(t) => doc::one_line(t),
                None => format!("the `{}` arm", doc::code(&arm.name)),
            };
            let gdoc = format!(" Reads the union as {adoc}.");
            let fdoc = format!(" A union holding {adoc} (remaining bytes zero).");
            let sdoc = format!(" Sets the union to {adoc} (remaining bytes zero).");
            let getter_fn = if elem.info().infallible {
                quote! {
                    #[doc = #gdoc]
                    pub fn #getter(&self) -> #ty {
                        #codec::decode_arm::<#ty>(&self.0, #label)
                    }
                }
            } else {
                quote! {
                    #[doc = #gdoc]
                    pub fn #getter(&self) -> Result<#ty, #codec::DecodeError> {
                        <#ty as #codec::Wire>::decode(&mut #codec::Reader::new(&self.0, #name), #label)
                    }
                }
            };
            let (getter_fn, from_body) = match (&elem, self.u8_array_alias(&arm.ty)) {
                // byte-array aliases (e.g. ip4_address): plain copies, no allocation
                (_, Some(k)) => {
                    let k = usize_lit(k);
                    (
                        quote! {
                            #[doc = #gdoc]
                            pub fn #getter(&self) -> #ty {
                                let mut a = [0u8; #k];
                                a.copy_from_slice(&self.0[..#k]);
                                #ty(a)
                            }
                        },
                        quote! {
                            let mut b = [0u8; #n];
                            b[..#k].copy_from_slice(&v.0);
                            Self(b)
                        },
                    )
                }
                (Elem::Prim(p), None) if p.int_range().is_some() => {
                    let k = usize_lit(p.size());
                    (
                        getter_fn,
                        quote! {
                            let mut b = [0u8; #n];
                            b[..#k].copy_from_slice(&v.to_be_bytes());
                            Self(b)
                        },
                    )
                }
                _ => (getter_fn, quote!(Self(#codec::encode_arm::<#ty, #n>(&v)))),
            };
            methods.push(quote! {
                #getter_fn
                #[doc = #fdoc]
                pub fn #from(v: #ty) -> Self {
                    #from_body
                }
                #[doc = #sdoc]
                pub fn #set(&mut self, v: #ty) {
                    *self = Self::#from(v);
                }
            });
        }
        let (derive, def) = if info.min <= 32 {
            (
                quote!(#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]),
                TokenStream::new(),
            )
        } else {
            (
                quote!(#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]),
                quote! {
                    impl Default for #id {
                        fn default() -> Self {
                            Self([0u8; #n])
                        }
                    }
                },
            )
        };
        let extra = feature_derives();
        let sa = serde_array_attr(&self.cfg.codec_path);
        Ok(quote! {
            #d
            #derive
            #extra
            pub struct #id(#sa pub [u8; #n]);
            #def
            impl #id {
                #(#methods)*
            }
            impl #codec::Wire for #id {
                const MIN_WIRE_SIZE: usize = #n;
                #[inline]
                fn encode(&self, out: &mut Vec<u8>) {
                    out.extend_from_slice(&self.0);
                }
                #[inline]
                fn wire_len(&self) -> usize {
                    #n
                }
                #[inline]
                fn decode(r: &mut #codec::Reader<'_>, field: &'static str) -> Result<Self, #codec::DecodeError> {
                    Ok(Self(r.array::<#n>(field)?))
                }
            }
        })
    }

    /// The length of a `u8[k]` alias type, if `ty` (as seen from this module) is one.
    fn u8_array_alias(&self, ty: &str) -> Option<usize> {
        let name = bare_type_name(ty)?;
        let owner = self.set.owner_of(self.module, name)?;
        match self.set.get(owner)?.type_items().get(name)? {
            TypeItem::Alias(a) if a.target == "u8" => a.length.map(|k| k as usize),
            _ => None,
        }
    }

    fn default_impl(id: &Ident, fc: &FieldsCode) -> TokenStream {
        if fc.derive_default {
            return TokenStream::new();
        }
        let defaults = &fc.defaults;
        quote! {
            impl Default for #id {
                fn default() -> Self {
                    Self { #(#defaults),* }
                }
            }
        }
    }

    fn emit_struct(&self, t: &TypeDef) -> Result<TokenStream, Error> {
        let codec = self.codec();
        let item = format!("type {}", t.name);
        let id = type_ident(&t.name);
        let dc = t.comment.as_deref().map(doc::parse).unwrap_or_default();
        let fc = self.fields(&item, Some(&t.name), &t.fields, &dc)?;
        let mut lines: Vec<String> = dc.paragraphs.iter().map(|p| doc::one_line(p)).collect();
        if lines.is_empty() {
            lines.push(format!("VPP type `{}`.", doc::code(&t.name)));
        }
        let d = docs(&lines);
        let derive = derives(fc.copy, fc.float, fc.derive_default);
        let decls = &fc.decls;
        let enc = &fc.encode;
        let dec = &fc.decode;
        let ids = &fc.idents;
        let len = &fc.len_expr;
        let min = usize_lit(fc.min);
        let def = Self::default_impl(&id, &fc);
        let r = if fc.decode.is_empty() {
            quote!(_r)
        } else {
            quote!(r)
        };
        let out = if fc.encode.is_empty() {
            quote!(_out)
        } else {
            quote!(out)
        };
        Ok(quote! {
            #d
            #derive
            pub struct #id {
                #(#decls),*
            }
            #def
            impl #codec::Wire for #id {
                const MIN_WIRE_SIZE: usize = #min;
                #[inline]
                fn encode(&self, #out: &mut Vec<u8>) {
                    #(#enc)*
                }
                #[inline]
                fn wire_len(&self) -> usize {
                    #len
                }
                #[inline]
                fn decode(#r: &mut #codec::Reader<'_>, _field: &'static str) -> Result<Self, #codec::DecodeError> {
                    #(#dec)*
                    Ok(Self { #(#ids),* })
                }
            }
        })
    }

    fn emit_message(&self, m: &MessageDef) -> Result<TokenStream, Error> {
        let codec = self.codec();
        let item = format!("message {}", m.name);
        let id = type_ident(&m.name);
        let (header, skip) = classify(&m.fields);
        let dc = m.comment.as_deref().map(doc::parse).unwrap_or_default();
        let fc = self.fields(&item, None, &m.fields[skip..], &dc)?;
        let name_crc = format!("{}_{:08x}", m.name, m.crc);
        let mut lines: Vec<String> = dc.paragraphs.iter().map(|p| doc::one_line(p)).collect();
        if lines.is_empty() {
            lines.push(format!("VPP message `{}`.", doc::code(&m.name)));
        }
        lines.push(format!(
            "Wire name `{name_crc}`, header kind `{}`: the struct holds the body only.",
            header.name()
        ));
        lines.extend(option_lines(&m.options));
        let d = docs(&lines);
        let derive = derives(false, fc.float, fc.derive_default);
        let decls = &fc.decls;
        let enc = &fc.encode;
        let dec = &fc.decode;
        let ids = &fc.idents;
        let len = &fc.len_expr;
        let def = Self::default_impl(&id, &fc);
        let name = &m.name;
        let crc = hex_u32(m.crc);
        let hk = match header {
            Header::Request => quote!(Request),
            Header::Reply => quote!(Reply),
            Header::Event => quote!(Event),
            Header::Other => quote!(Other),
        };
        let r = if fc.decode.is_empty() {
            quote!(_r)
        } else {
            quote!(r)
        };
        let out = if fc.encode.is_empty() {
            quote!(_out)
        } else {
            quote!(out)
        };
        let has_retval = m.fields[skip..]
            .iter()
            .any(|f| f.name == "retval" && f.ty == "i32" && f.shape == Shape::Scalar);
        let reply_impl = if has_retval {
            quote! {
                impl #codec::Reply for #id {
                    #[inline]
                    fn retval(&self) -> i32 {
                        self.retval
                    }
                }
            }
        } else {
            TokenStream::new()
        };
        Ok(quote! {
            #d
            #derive
            pub struct #id {
                #(#decls),*
            }
            #def
            #reply_impl
            impl #codec::Message for #id {
                const NAME: &'static str = #name;
                const CRC: u32 = #crc;
                const NAME_CRC: &'static str = #name_crc;
                const HEADER: #codec::HeaderKind = #codec::HeaderKind::#hk;
                #[inline]
                fn body_len(&self) -> usize {
                    #len
                }
                #[inline]
                fn encode_body(&self, #out: &mut Vec<u8>) {
                    #(#enc)*
                }
                #[inline]
                fn decode_body(#r: &mut #codec::Reader<'_>) -> Result<Self, #codec::DecodeError> {
                    #(#dec)*
                    Ok(Self { #(#ids),* })
                }
            }
        })
    }

    fn emit_service(&self, s: &ServiceDef) -> Result<TokenStream, Error> {
        let codec = self.codec();
        let item = format!("service {}", s.request);
        let msg = |n: &str| -> Result<Ident, Error> {
            if self.file.messages.iter().any(|m| m.name == n) {
                Ok(type_ident(n))
            } else {
                Err(Error::Format {
                    file: self.file.file_name.clone(),
                    item: item.clone(),
                    reason: format!("unknown message {n}"),
                })
            }
        };
        let req = msg(&s.request)?;
        let Some(reply) = &s.reply else {
            return Ok(quote!(impl #codec::OneWay for #req {}));
        };
        let rep = msg(reply)?;
        if s.stream {
            if let Some(d) = &s.stream_msg {
                let det = msg(d)?;
                return Ok(quote! {
                    impl #codec::CursorGet for #req {
                        type Reply = #rep;
                        type Details = #det;
                    }
                });
            }
            return Ok(quote! {
                impl #codec::Dump for #req {
                    type Details = #rep;
                }
            });
        }
        let mut out = quote! {
            impl #codec::Request for #req {
                type Reply = #rep;
            }
        };
        if let [ev] = s.events.as_slice() {
            let ev = msg(ev)?;
            out.extend(quote! {
                impl #codec::EventSubscribe for #req {
                    type Event = #ev;
                }
            });
        } else {
            for ev in &s.events {
                msg(ev)?;
            }
        }
        Ok(out)
    }

    /// The whole module file as a token stream (without the leading `//!` lines).
    pub(crate) fn emit(&self) -> Result<TokenStream, Error> {
        let codec = self.codec();
        let f = self.file;
        let own = self.set.own_types(self.module);
        let mut items = vec![];
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut claim = |rust: String, what: String| -> Result<(), Error> {
            if let Some(prev) = names.insert(rust.clone(), what.clone()) {
                return Err(Error::Unsupported {
                    file: f.file_name.clone(),
                    item: what,
                    reason: format!("rust name {rust} also used by {prev}"),
                });
            }
            Ok(())
        };
        let mut enums: Vec<&EnumDef> = f
            .enums
            .iter()
            .filter(|e| own.contains(e.name.as_str()))
            .collect();
        enums.sort_by(|a, b| a.name.cmp(&b.name));
        for e in enums {
            claim(camel(&e.name), format!("enum {}", e.name))?;
            items.push(self.emit_enum(e));
        }
        let mut aliases: Vec<&AliasDef> = f
            .aliases
            .iter()
            .filter(|a| own.contains(a.name.as_str()))
            .collect();
        aliases.sort_by(|a, b| a.name.cmp(&b.name));
        for a in aliases {
            claim(camel(&a.name), format!("alias {}", a.name))?;
            items.push(self.emit_alias(a)?);
        }
        let mut unions: Vec<&TypeDef> = f
            .unions
            .iter()
            .filter(|u| own.contains(u.name.as_str()))
            .collect();
        unions.sort_by(|a, b| a.name.cmp(&b.name));
        for u in unions {
            claim(camel(&u.name), format!("union {}", u.name))?;
            items.push(self.emit_union(u)?);
        }
        let mut types: Vec<&TypeDef> = f
            .types
            .iter()
            .filter(|t| own.contains(t.name.as_str()))
            .collect();
        types.sort_by(|a, b| a.name.cmp(&b.name));
        for t in types {
            claim(camel(&t.name), format!("type {}", t.name))?;
            items.push(self.emit_struct(t)?);
        }
        let mut msgs: Vec<&MessageDef> = f.messages.iter().collect();
        msgs.sort_by(|a, b| a.name.cmp(&b.name));
        for m in &msgs {
            claim(camel(&m.name), format!("message {}", m.name))?;
            items.push(self.emit_message(m)?);
        }
        let mut svcs: Vec<&ServiceDef> = f.services.iter().collect();
        svcs.sort_by(|a, b| a.request.cmp(&b.request));
        for s in svcs {
            items.push(self.emit_service(s)?);
        }
        let module = self.module;
        let entries = msgs.iter().map(|m| {
            let id = type_ident(&m.name);
            quote!(#codec::MessageInfo::of::<#id>(#module))
        });
        let version = f.version.clone().unwrap_or_default();
        let api_crc = hex_u32(f.api_crc.unwrap_or(0));
        let mdoc = format!(" Every message of `{module}`, sorted by name.");
        Ok(quote! {
            /// The module's API version (`options.version`).
            pub const VERSION: &str = #version;
            /// The module's `vl_api_version` (file CRC).
            pub const API_CRC: u32 = #api_crc;
            #(#items)*
            #[doc = #mdoc]
            pub static MESSAGES: &[#codec::MessageInfo] = &[#(#entries),*];
        })
    }
}

/// A `0x%08x` integer literal.
fn hex_u32(v: u32) -> TokenStream {
    let lit: Literal = format!("{v:#010x}")
        .parse()
        .unwrap_or_else(|_| Literal::u32_unsuffixed(v));
    quote!(#lit)
}

fn sanitize_const(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if s == "SELF" {
        s.push('_');
    }
    s
}

/// The `mod.rs` registry for the generated modules.
pub(crate) fn emit_mod(
    set: &ApiSet,
    cfg: &Config,
    modules: &[String],
) -> Result<TokenStream, Error> {
    let codec: TokenStream = cfg
        .codec_path
        .parse()
        .unwrap_or_else(|_| quote!(crate::codec));
    let mut entries: Vec<(String, TokenStream)> = vec![];
    let mut mods = vec![];
    let mut visit_types: Vec<(String, TokenStream)> = vec![];
    for m in modules {
        let mid = format_ident!("{}", m);
        let f = set.get(m).ok_or_else(|| Error::MissingModule {
            module: m.clone(),
            imported_by: None,
        })?;
        let d = format!(
            " Messages and types of `{}` (version {}).",
            f.file_name,
            f.version.as_deref().unwrap_or("unknown")
        );
        mods.push(quote!(#[doc = #d] pub mod #mid;));
        for msg in &f.messages {
            let id = type_ident(&msg.name);
            entries.push((
                format!("{}_{:08x}", msg.name, msg.crc),
                quote!(#codec::MessageInfo::of::<#mid::#id>(#m)),
            ));
            visit_types.push((format!("{}_{:08x}", msg.name, msg.crc), quote!(#mid::#id)));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for w in entries.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(Error::Unsupported {
                file: "mod.rs".into(),
                item: w[0].0.clone(),
                reason: "message defined by two modules".into(),
            });
        }
    }
    let es = entries.iter().map(|e| &e.1);
    visit_types.sort_by(|a, b| a.0.cmp(&b.0));
    let vis = visit_types.iter().map(|e| &e.1);
    let errors = if cfg.errors {
        let m = format_ident!("{}", crate::ERRORS_MODULE);
        quote! {
            /// VPP's API errors: the meaning of a reply's non-zero `retval`.
            pub mod #m;
            pub use #m::ApiError;
        }
    } else {
        TokenStream::new()
    };
    Ok(quote! {
        #errors
        #(#mods)*

        /// The `.api.json` modules generated here, sorted.
        pub const MODULES: &[&str] = &[#(#modules),*];

        /// Every generated message, sorted by `name_crc` (for [`find_message`]).
        pub static MESSAGES: &[#codec::MessageInfo] = &[#(#es),*];

        /// Calls [`visit`](#codec::MessageVisitor::visit) once for every generated message type
        /// (tests, fuzzing and tools that must cover every message).
        pub fn visit_messages<V: #codec::MessageVisitor>(v: &mut V) {
            #(v.visit::<#vis>();)*
        }

        /// The message whose `name_crc` (e.g. `control_ping_51077d14`) is `name_crc`.
        pub fn find_message(name_crc: &str) -> Option<&'static #codec::MessageInfo> {
            MESSAGES
                .binary_search_by(|m| m.name_crc.cmp(name_crc))
                .ok()
                .map(|i| &MESSAGES[i])
        }

        /// The message named `name` (e.g. `control_ping`), whatever its CRC.
        pub fn find_message_by_name(name: &str) -> Option<&'static #codec::MessageInfo> {
            MESSAGES.iter().find(|m| m.name == name)
        }

        /// Decodes the exact body of the message named `name_crc`.
        pub fn decode_any(
            name_crc: &str,
            body: &[u8],
        ) -> Result<Box<dyn #codec::DynMessage>, #codec::DecodeAnyError> {
            let info = find_message(name_crc)
                .ok_or_else(|| #codec::DecodeAnyError::UnknownMessage(name_crc.to_owned()))?;
            Ok((info.decode_body)(body)?)
        }
    })
}

// ---- feature-gated value derives (serde, arbitrary): used by tests, golden vectors, fuzzing ----

/// `#[cfg_attr(feature = ..., derive(...))]` lines added to every generated type.
fn feature_derives() -> TokenStream {
    quote! {
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
    }
}

/// Field attribute: fixed arrays go through `codec::serde_array` (serde only derives `N <= 32`).
fn serde_array_attr(codec_path: &str) -> TokenStream {
    let with = format!("{codec_path}::serde_array");
    quote!(#[cfg_attr(feature = "serde", serde(with = #with))])
}

/// Field attribute: an `arbitrary` constructor that yields only values that survive a wire round
/// trip (fixed strings without NUL and short enough, VLAs within their count type, no NaN).
fn arbitrary_with_attr(codec: &TokenStream, ctor: TokenStream) -> TokenStream {
    quote!(#[cfg_attr(feature = "arbitrary", arbitrary(with = #codec::arbitrary_support::#ctor))])
}
