//! `#[derive(Record)]` for [`coalesce-sql`](https://docs.rs/coalesce-sql):
//! use it through `coalesce_sql::Record`, where it is documented.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::{
    Data, DeriveInput, Fields, Ident, LitStr, Token, Type, parse_macro_input,
    punctuated::Punctuated,
};

/// Implements `coalesce_sql::Record<DB>` for every dialect and
/// `coalesce_sql::TableRow` for a struct with named fields, from
/// `#[record(table = "...", key(field, ...))]` (optionally `schema = "..."`).
/// Columns are named as the fields; the key fields, in the order given, form
/// the key (one field: its type; several: a tuple), every other field is a
/// value column, in declaration order.
#[proc_macro_derive(Record, attributes(record))]
pub fn derive_record(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What `#[record(...)]` says.
struct Attributes {
    table: LitStr,
    schema: Option<LitStr>,
    key: Vec<Ident>,
}

fn attributes(input: &DeriveInput) -> syn::Result<Attributes> {
    let mut table = None;
    let mut schema = None;
    let mut key = Vec::new();
    for attribute in input.attrs.iter().filter(|a| a.path().is_ident("record")) {
        attribute.parse_nested_meta(|meta| {
            if meta.path.is_ident("table") {
                table = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("schema") {
                schema = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("key") {
                let content;
                syn::parenthesized!(content in meta.input);
                key.extend(Punctuated::<Ident, Token![,]>::parse_terminated(&content)?);
            } else {
                return Err(
                    meta.error("expected `table = \"...\"`, `schema = \"...\"` or `key(...)`")
                );
            }
            Ok(())
        })?;
    }
    let missing = |what| syn::Error::new(Span::call_site(), format!("#[record(...)] needs {what}"));
    Ok(Attributes {
        table: table.ok_or_else(|| missing("`table = \"...\"`"))?,
        schema,
        key: if key.is_empty() {
            return Err(missing("`key(field, ...)`"));
        } else {
            key
        },
    })
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let Attributes { table, schema, key } = attributes(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            input,
            "#[derive(Record)] needs a struct",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            input,
            "#[derive(Record)] needs named fields",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(Record)] needs a struct without generics",
        ));
    }
    let fields: Vec<(&Ident, &Type)> = fields
        .named
        .iter()
        .filter_map(|f| Some((f.ident.as_ref()?, &f.ty)))
        .collect();
    let mut key_fields = Vec::with_capacity(key.len());
    for name in &key {
        let Some(field) = fields.iter().find(|(field, _)| *field == name) else {
            return Err(syn::Error::new_spanned(name, "no field of this name"));
        };
        if key_fields.iter().any(|(seen, _)| *seen == name) {
            return Err(syn::Error::new_spanned(name, "key field named twice"));
        }
        key_fields.push(*field);
    }
    let values: Vec<(&Ident, &Type)> = fields
        .iter()
        .filter(|(name, _)| !key.contains(name))
        .copied()
        .collect();
    if values.len() > 8 {
        return Err(syn::Error::new_spanned(
            input,
            "#[derive(Record)] supports at most 8 value columns",
        ));
    }
    if key_fields.len() > 4 {
        return Err(syn::Error::new_spanned(
            input,
            "#[derive(Record)] supports keys of at most 4 fields",
        ));
    }

    let name = &input.ident;
    let (key_names, key_types): (Vec<_>, Vec<_>) = key_fields.iter().copied().unzip();
    let (value_names, value_types): (Vec<_>, Vec<_>) = values.iter().copied().unzip();
    let (key_type, key_value) = match (key_names.as_slice(), key_types.as_slice()) {
        ([field], [ty]) => (
            quote!(#ty),
            quote!(::core::clone::Clone::clone(&self.#field)),
        ),
        _ => (
            quote!((#(#key_types,)*)),
            quote!((#(::core::clone::Clone::clone(&self.#key_names),)*)),
        ),
    };
    let key_columns = key_names.iter().map(|n| n.to_string());
    let value_columns = value_names.iter().map(|n| n.to_string());
    let value_count = value_names.len();
    let schema = schema.map(|schema| quote!(.schema(#schema)));
    let sql = quote!(::coalesce_sql);
    Ok(quote! {
        impl<DB: #sql::Dialect> #sql::Record<DB> for #name
        where
            #key_type: #sql::Key<DB>,
            #(#value_types: #sql::Value<DB>,)*
        {
            type Key = #key_type;
            type Values<'a> = (#(&'a #value_types,)*);
            fn key(&self) -> Self::Key {
                #key_value
            }
            fn values(&self) -> Self::Values<'_> {
                (#(&self.#value_names,)*)
            }
        }

        impl #sql::TableRow for #name {
            type Key = #key_type;
            fn table() -> #sql::Table {
                #sql::Table::new(#table)
                    #schema
                    .key([#(#key_columns),*])
                    .values::<[&str; #value_count], &str>([#(#value_columns),*])
            }
            #sql::table_row_backends!();
        }
    })
}
