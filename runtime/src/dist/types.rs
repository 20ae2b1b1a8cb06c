//! Which message types cross nodes. A message is any `Send + 'static` value, but only a type
//! every node can encode and decode can leave its node: it is registered under a tag, the same
//! string on every node ([`register`]). Common types are registered from the start.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    sync::{LazyLock, RwLock},
};

use bytes::BytesMut;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    frame::Codec,
    wire::{read_value, write_value},
};
use crate::{
    exit::ExitReason,
    link::{Down, Exit},
    message::Message,
    pid::Pid,
};

type Encode = fn(&Message, Codec, &mut BytesMut) -> Result<(), String>;
type Decode = fn(Codec, &[u8]) -> Result<Message, String>;

struct Known {
    tag: &'static str,
    hash: u64,
    type_id: TypeId,
    encode: Encode,
    decode: Decode,
}

#[derive(Default)]
struct Types {
    by_type: HashMap<TypeId, usize>,
    by_hash: HashMap<u64, usize>,
    list: Vec<Known>,
}

static TYPES: LazyLock<RwLock<Types>> = LazyLock::new(|| {
    let mut types = Types::default();
    macro_rules! builtin {
        ($($ty:ty => $tag:literal),* $(,)?) => {
            $(types.add::<$ty>($tag).expect("built-in tags are distinct");)*
        };
    }
    builtin! {
        () => "()", bool => "bool", char => "char",
        u8 => "u8", u16 => "u16", u32 => "u32", u64 => "u64", u128 => "u128", usize => "usize",
        i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", i128 => "i128", isize => "isize",
        f32 => "f32", f64 => "f64",
        String => "String", Vec<u8> => "Vec<u8>",
        Pid => "ferrotp::Pid", ExitReason => "ferrotp::ExitReason",
        Exit => "ferrotp::Exit", Down => "ferrotp::Down",
    }
    RwLock::new(types)
});

/// Why [`register`] refused a type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterTypeError {
    /// The tag is taken by another type (or hashes like another tag: choose another).
    #[error("the tag `{tag}` is already used by `{other}`")]
    TagTaken {
        /// The tag asked for.
        tag: String,
        /// The tag registered before, whose type differs.
        other: String,
    },
    /// The type is registered under another tag.
    #[error("the type is already registered as `{0}`")]
    OtherTag(String),
}

/// Lets values of type `T` be sent to processes on other nodes, under `tag`: every node that
/// sends or receives them registers `T` under the same tag. Registering the same type under the
/// same tag again does nothing.
///
/// A value is decoded to whatever depth its frame describes: a peer holding the cookie can send
/// a recursive type (a tree, say) nested deeply enough to exhaust the receiving thread's stack.
/// Peers that know the cookie are trusted (see the guide's security model); for a recursive
/// structure that crosses nodes, prefer a flat form (a `Vec` of nodes linked by index).
///
/// Common types are registered already: `()`, `bool`, `char`, the integer and float types,
/// `String`, `Vec<u8>`, [`Pid`], [`ExitReason`], [`Exit`] and [`Down`]. Sending a value of a type
/// that is not registered to another node drops it with an `error` event naming the type.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Ping { from: ferrotp::Pid }
///
/// ferrotp::dist::register::<Ping>("my_app::Ping").unwrap();
/// ```
///
/// # Errors
///
/// [`RegisterTypeError`] when the tag belongs to another type or the type to another tag.
pub fn register<T: Serialize + DeserializeOwned + Any + Send>(
    tag: &str,
) -> Result<(), RegisterTypeError> {
    TYPES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .add::<T>(tag)
}

impl Types {
    fn add<T: Serialize + DeserializeOwned + Any + Send>(
        &mut self,
        tag: &str,
    ) -> Result<(), RegisterTypeError> {
        let hash = fnv1a(tag);
        let type_id = TypeId::of::<T>();
        if let Some(&at) = self.by_hash.get(&hash) {
            let known = &self.list[at];
            return match known.type_id == type_id && known.tag == tag {
                true => Ok(()),
                false => Err(RegisterTypeError::TagTaken {
                    tag: tag.to_owned(),
                    other: known.tag.to_owned(),
                }),
            };
        }
        if let Some(&at) = self.by_type.get(&type_id) {
            return Err(RegisterTypeError::OtherTag(self.list[at].tag.to_owned()));
        }
        let at = self.list.len();
        self.list.push(Known {
            tag: Box::leak(tag.into()),
            hash,
            type_id,
            encode: |message, codec, out| match message.downcast_ref::<T>() {
                Some(value) => write_value(out, codec, value),
                None => Err("the message is not of its registered type".to_owned()),
            },
            decode: |codec, body| read_value::<T>(codec, body).map(Message::new),
        });
        self.by_hash.insert(hash, at);
        self.by_type.insert(type_id, at);
        Ok(())
    }
}

fn types() -> std::sync::RwLockReadGuard<'static, Types> {
    TYPES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tag hash and encoder of `message`'s type; `None` if it is not registered.
pub(crate) fn encoder(message: &Message) -> Option<(u64, Encode)> {
    let types = types();
    let known = &types.list[*types.by_type.get(&message.value_type_id())?];
    Some((known.hash, known.encode))
}

/// Decodes a message whose type tag hashes to `hash`.
pub(crate) fn decode(hash: u64, codec: Codec, body: &[u8]) -> Result<Message, String> {
    let decode = {
        let types = types();
        let at = *types
            .by_hash
            .get(&hash)
            .ok_or_else(|| format!("no message type is registered with tag hash {hash:#018x}"))?;
        types.list[at].decode
    };
    decode(codec, body)
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike `Hash`.
pub(crate) fn fnv1a(tag: &str) -> u64 {
    tag.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_type_round_trips_in_both_codecs() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Token(u32, String);
        register::<Token>("types-test::Token").unwrap();
        register::<Token>("types-test::Token").unwrap();
        for codec in [Codec::Postcard, Codec::Json] {
            let message = Message::new(Token(7, "x".into()));
            let (hash, encode) = encoder(&message).unwrap();
            let mut out = BytesMut::new();
            encode(&message, codec, &mut out).unwrap();
            let back = decode(hash, codec, &out).unwrap();
            assert_eq!(back.downcast::<Token>().unwrap(), Token(7, "x".into()));
        }
    }

    #[test]
    fn tags_and_types_are_one_to_one() {
        struct Unregistered;
        assert!(encoder(&Message::new(Unregistered)).is_none());
        assert!(matches!(
            register::<u32>("types-test::u32"),
            Err(RegisterTypeError::OtherTag(tag)) if tag == "u32"
        ));
        assert!(matches!(
            register::<(u8, u8)>("String"),
            Err(RegisterTypeError::TagTaken { .. })
        ));
        assert!(decode(fnv1a("nobody"), Codec::Postcard, &[]).is_err());
    }
}
