//! [`SharedStr`]: the immutable string of a decoded event, sharing the decoder's buffer.

use std::{borrow::Borrow, fmt, ops::Deref, str::Utf8Error};

use bytes::Bytes;
use bytestring::ByteString;

/// An immutable UTF-8 string stored in [`Bytes`]: cloning one is a reference count, not a
/// copy.
///
/// [`MessageEvent::shared_data`] hands out an event's data as one, sharing the text the
/// decoder read it from; an event's last event id that came in an earlier chunk is one too.
/// A `SharedStr` derefs to `str` and compares with `str`, `&str` and `String` either way
/// round; `String::from(s)` copies it out. Holding one keeps its buffer alive (for a slice of
/// the decoder's input, a few kilobytes of the stream around it).
///
/// ```
/// use tower_sse_core::{Decoded, Decoder};
///
/// let mut decoder = Decoder::new();
/// decoder.feed(b"id: 7\ndata: hello\n\n");
/// let Ok(Some(Decoded::Event(event))) = decoder.decode() else { panic!() };
/// let data = event.shared_data();
/// drop(event);
/// assert_eq!(data, "hello");
/// assert!(data.starts_with("he")); // any `str` method
/// let owned: String = data.into();
/// assert_eq!(owned, "hello");
/// ```
///
/// [`MessageEvent::shared_data`]: crate::MessageEvent::shared_data
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(ByteString);

impl SharedStr {
    /// The empty string.
    #[must_use]
    pub const fn new() -> Self {
        Self(ByteString::new())
    }

    /// A string for a `&'static str`, without allocating.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        Self(ByteString::from_static(s))
    }

    /// The string as a `&str`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying bytes, shared (no copy).
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        self.0.as_bytes().clone()
    }

    /// The underlying bytes.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// A string already checked as UTF-8.
    pub(crate) fn from_text(text: ByteString) -> Self {
        Self(text)
    }

    /// Decodes `bytes` as UTF-8 with replacement, as the event-stream format requires: valid
    /// input is kept as it is (no copy), invalid sequences become U+FFFD in a new string.
    pub(crate) fn from_utf8_lossy(bytes: Bytes) -> Self {
        // Cloning a `Bytes` is a reference count: it keeps the input for the rare lossy path
        // without checking it twice.
        match ByteString::try_from(bytes.clone()) {
            Ok(s) => Self(s),
            Err(_) => Self::lossy(&bytes),
        }
    }

    #[cold]
    fn lossy(bytes: &[u8]) -> Self {
        Self(ByteString::from(
            String::from_utf8_lossy(bytes).into_owned(),
        ))
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for SharedStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        Self(ByteString::from(s))
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        Self(ByteString::from(s))
    }
}

impl TryFrom<Bytes> for SharedStr {
    type Error = Utf8Error;

    /// Checks that `bytes` are UTF-8 and keeps them (no copy).
    fn try_from(bytes: Bytes) -> Result<Self, Utf8Error> {
        ByteString::try_from(bytes).map(Self)
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl From<SharedStr> for Bytes {
    fn from(s: SharedStr) -> Self {
        s.into_bytes()
    }
}

macro_rules! eq_both_ways {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for SharedStr {
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == &other[..]
            }
        }
        impl PartialEq<SharedStr> for $other {
            fn eq(&self, other: &SharedStr) -> bool {
                &self[..] == other.as_str()
            }
        }
    )*};
}

eq_both_ways!(str, &str, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_is_kept_without_a_copy() {
        let bytes = Bytes::from(b"caf\xC3\xA9".to_vec());
        let s = SharedStr::from_utf8_lossy(bytes.clone());
        assert_eq!(s, "café");
        assert_eq!(s.to_bytes().as_ptr(), bytes.as_ptr());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let s = SharedStr::from_utf8_lossy(Bytes::from_static(b"a\xFFb\xE2\x82"));
        assert_eq!(s, "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn compares_and_converts_like_a_string() {
        let s = SharedStr::from_static("abc");
        assert_eq!(s, "abc");
        assert_eq!("abc", s);
        assert_eq!(s, String::from("abc"));
        assert_eq!(String::from("abc"), s);
        assert_eq!(*"abc", s);
        assert_ne!(s, "abd");
        assert_eq!(format!("{s} {s:?}"), "abc \"abc\"");
        assert_eq!(String::from(s.clone()), "abc");
        assert_eq!(SharedStr::from(String::from("abc")), s);
        assert_eq!(SharedStr::from("abc"), s);
        assert_eq!(
            SharedStr::try_from(Bytes::from_static(b"abc")),
            Ok(s.clone())
        );
        assert!(SharedStr::try_from(Bytes::from_static(b"\xFF")).is_err());
        let set: std::collections::HashSet<SharedStr> = [s].into_iter().collect();
        assert!(set.contains("abc"));
    }
}
