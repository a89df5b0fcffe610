//! Percent-encoding exactly as SigV4 defines it (`UriEncode`), and the one
//! decoding step S3 applies to paths and query strings.

/// Bytes SigV4 leaves alone: `A-Z a-z 0-9 - _ . ~`.
const fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// Per byte: 1 if unreserved, 2 if `/` (kept in paths only); one load
/// per byte instead of a chain of comparisons.
const KEPT: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        if is_unreserved(byte as u8) {
            table[byte] = 1;
        }
        byte += 1;
    }
    table[b'/' as usize] = 2;
    table
};

/// `UriEncode`: every byte outside the unreserved set becomes `%XX` with
/// upper-case hex. With `keep_slash`, `/` stays (for paths); without it,
/// it becomes `%2F` (for query names and values).
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    uri_encode_into(&mut out, input, keep_slash);
    out
}

/// [`uri_encode`], appending to `out`.
pub fn uri_encode_into(out: &mut String, input: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mask = if keep_slash { 3 } else { 1 };
    let kept = |byte: u8| KEPT[usize::from(byte)] & mask != 0;
    // Runs of kept bytes are copied whole: most of a canonical request is
    // one run (a key, a date), and a byte at a time costs a capacity check
    // and a UTF-8 encoding each.
    let mut rest = input;
    while !rest.is_empty() {
        let run = rest.iter().position(|&byte| !kept(byte)).unwrap_or(rest.len());
        let (plain, tail) = rest.split_at(run);
        out.push_str(std::str::from_utf8(plain).expect("kept bytes are ASCII"));
        if let Some((&byte, after)) = tail.split_first() {
            let escape = [b'%', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]];
            out.push_str(std::str::from_utf8(&escape).expect("an escape is ASCII"));
            rest = after;
        } else {
            rest = tail;
        }
    }
}

/// One hex digit's value, either case.
pub(super) fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The input held a `%` not followed by two hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPercentEncoding;

/// Decodes `%XX` escapes once. With `plus_is_space`, `+` decodes to a space
/// (query strings, as S3 reads them); in paths `+` is a literal plus.
pub fn percent_decode(input: &str, plus_is_space: bool) -> Result<Vec<u8>, BadPercentEncoding> {
    let mut out = Vec::with_capacity(input.len());
    // Runs without an escape are copied whole: a key or a signature is
    // usually one run, and a byte at a time costs a capacity check each.
    let special = |byte: &u8| decodes(*byte, plus_is_space);
    let mut rest = input.as_bytes();
    while let Some(at) = rest.iter().position(special) {
        out.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            out.push(b' ');
            rest = &rest[at + 1..];
            continue;
        }
        let high = rest.get(at + 1).copied().and_then(hex_value);
        let low = rest.get(at + 2).copied().and_then(hex_value);
        match (high, low) {
            (Some(high), Some(low)) => out.push(high << 4 | low),
            _ => return Err(BadPercentEncoding),
        }
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    Ok(out)
}

/// Does decoding change this byte (`%` always, `+` in query strings)?
fn decodes(byte: u8, plus_is_space: bool) -> bool {
    byte == b'%' || (plus_is_space && byte == b'+')
}

/// [`percent_decode`] to text; bytes that are not UTF-8 become U+FFFD, as
/// S3 reads a query. Text without escapes is copied once.
fn percent_decode_lossy(input: &str, plus_is_space: bool) -> Result<String, BadPercentEncoding> {
    if !input.bytes().any(|byte| decodes(byte, plus_is_space)) {
        return Ok(input.to_string());
    }
    let bytes = percent_decode(input, plus_is_space)?;
    Ok(String::from_utf8(bytes).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
}

/// One decoded query parameter. A bare `name` (as in `?uploads`) has an
/// empty value, which is what SigV4's canonical form (`uploads=`) expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    pub name: String,
    pub value: String,
}

/// Splits and decodes a raw query string (without the `?`).
pub fn parse_query(raw_query: &str) -> Result<Vec<QueryParam>, BadPercentEncoding> {
    let mut params = Vec::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.push(QueryParam { name: percent_decode_lossy(name, true)?, value: percent_decode_lossy(value, true)? });
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode(b"a b+c/d~e", true), "a%20b%2Bc/d~e");
        assert_eq!(uri_encode(b"a/b", false), "a%2Fb");
        assert_eq!(uri_encode("ሴ".as_bytes(), true), "%E1%88%B4");
        assert_eq!(uri_encode(b"", true), "");
        assert_eq!(uri_encode(b"/a b/", false), "%2Fa%20b%2F");
        assert_eq!(uri_encode(b"%%", true), "%25%25");
        let every_byte: Vec<u8> = (0..=255).collect();
        let encoded = uri_encode(&every_byte, false);
        assert_eq!(encoded.len(), 66 + 3 * (256 - 66), "66 bytes unreserved, the rest escaped");
        assert_eq!(percent_decode(&encoded, false).unwrap(), every_byte);
    }

    #[test]
    fn decodes_once() {
        assert_eq!(percent_decode("%2541+b", false).unwrap(), b"%41+b");
        assert_eq!(percent_decode("a+b", true).unwrap(), b"a b");
        assert_eq!(percent_decode("%4", false), Err(BadPercentEncoding));
        assert_eq!(percent_decode("%zz", false), Err(BadPercentEncoding));
    }

    #[test]
    fn bare_query_names_have_empty_values() {
        let params = parse_query("uploads&prefix=a%2Fb&&x=").unwrap();
        let pairs: Vec<_> = params.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
        assert_eq!(pairs, [("uploads", ""), ("prefix", "a/b"), ("x", "")]);
        let params = parse_query("a+b=%E1%88%B4+%FF&c%3D=%3D").unwrap();
        let pairs: Vec<_> = params.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
        assert_eq!(pairs, [("a b", "ሴ \u{FFFD}"), ("c=", "=")]);
        assert_eq!(parse_query("a=%F"), Err(BadPercentEncoding));
    }
}
