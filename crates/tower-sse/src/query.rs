//! [`query_topics`]: the topics a request names in its query string.

/// The percent-decoded values of every `name` parameter of `query` (the raw query string,
/// without `?`), at most `max` of them, for [`Hub::subscribe_request`](crate::Hub::subscribe_request).
///
/// `%XX` escapes and `+` (a space) are decoded, as browsers encode a `/` in
/// `URLSearchParams` as `%2F`. Nothing is validated here: a value that is not UTF-8 keeps a
/// replacement character, which no topic name allows, so the hub refuses it with the rest.
///
/// ```
/// use tower_sse::query_topics;
///
/// let topics = query_topics(Some("topic=chat&x=1&topic=private%2Fops"), "topic", 32);
/// assert_eq!(topics, ["chat", "private/ops"]);
/// assert!(query_topics(None, "topic", 32).is_empty());
/// ```
pub fn query_topics(query: Option<&str>, name: &str, max: usize) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
        .take(max)
        .map(decode)
        .collect()
}

fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_bounds() {
        assert_eq!(
            query_topics(Some("topic=a%2Fb&topic=&topic"), "topic", 9),
            ["a/b", "", ""]
        );
        assert_eq!(query_topics(Some("topic=%ff"), "topic", 9), ["\u{fffd}"]);
        assert_eq!(query_topics(Some("topic=a%2"), "topic", 9), ["a%2"]);
        assert_eq!(
            query_topics(Some("topic=1&topic=2&topic=3"), "topic", 2),
            ["1", "2"]
        );
        assert_eq!(
            query_topics(Some("topics=1"), "topic", 2),
            Vec::<String>::new()
        );
    }
}
