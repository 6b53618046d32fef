/// The 4,096-byte `data` of the large shape: 33 lines of JSON-looking text with the 32 LFs
/// between them (4,320 bytes encoded with the shape's id and event type).
///
/// Its own file so that `tests/encode_one_allocation.rs` (another target) includes it too.
pub(crate) fn large_data() -> String {
    let mut large = String::with_capacity(4096);
    for row in 0..33 {
        if row > 0 {
            large.push('\n');
        }
        let width = if row == 32 { 4064 - 32 * 123 } else { 123 };
        let start = large.len();
        large.push_str(&format!(r#"{{"row":{row},"text":""#));
        let mut letter = b'a' + row as u8 % 26;
        while large.len() - start < width - 2 {
            large.push(char::from(letter));
            letter = if letter == b'z' { b'a' } else { letter + 1 };
        }
        large.push_str(r#""}"#);
    }
    assert_eq!((large.len(), large.matches('\n').count()), (4096, 32));
    large
}
