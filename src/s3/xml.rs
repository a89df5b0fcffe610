//! XML out (a small writer) and in (a small element tree, with limits).

use quick_xml::events::Event;
use quick_xml::Reader;

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for element content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed raw in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push_str(&format!("&#x{:X};", c as u32)),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Builds an S3 response document.
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// Starts a document whose root element carries the S3 namespace.
    pub fn new(root: &str) -> XmlWriter {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        out.push_str(root);
        out.push_str(" xmlns=\"");
        out.push_str(S3_NAMESPACE);
        out.push_str("\">");
        XmlWriter { out }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn element(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name)
    }

    /// Appends markup as it is (for elements with attributes).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// A parsed element: its local name, its text and its children.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }
}

/// The document is not well-formed XML.
#[derive(Debug)]
pub struct MalformedXml;

const MAX_DEPTH: usize = 16;
/// Elements in one document: 10,000 multipart parts with a checksum each
/// fit; a document of tiny empty elements cannot balloon in memory.
const MAX_ELEMENTS: usize = 60_000;

/// Parses a whole document into an element tree. Namespaces prefixes are
/// dropped: S3 matches on local names.
pub fn parse(bytes: &[u8]) -> Result<Element, MalformedXml> {
    let text = std::str::from_utf8(bytes).map_err(|_| MalformedXml)?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let local_name = |name: &[u8]| {
        let name = String::from_utf8_lossy(name).into_owned();
        match name.rsplit_once(':') {
            Some((_, local)) => local.to_string(),
            None => name,
        }
    };
    loop {
        match reader.read_event().map_err(|_| MalformedXml)? {
            Event::Start(start) => {
                elements += 1;
                if stack.len() >= MAX_DEPTH || root.is_some() || elements > MAX_ELEMENTS {
                    return Err(MalformedXml);
                }
                stack.push(Element { name: local_name(start.name().as_ref()), ..Element::default() });
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(MalformedXml);
                }
                let element = Element { name: local_name(start.name().as_ref()), ..Element::default() };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return Err(MalformedXml),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or(MalformedXml)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                let value = text.unescape().map_err(|_| MalformedXml)?;
                // No XML holds a NUL: refused raw as quick-xml refuses `&#0;`,
                // so that what larder writes (`escape`) always reads back.
                if value.contains('\0') {
                    return Err(MalformedXml);
                }
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&value),
                    None if value.trim().is_empty() => {}
                    None => return Err(MalformedXml),
                }
            }
            Event::CData(data) => {
                if data.contains(&0) {
                    return Err(MalformedXml);
                }
                let element = stack.last_mut().ok_or(MalformedXml)?;
                element.text.push_str(&String::from_utf8_lossy(&data));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(MalformedXml);
    }
    root.ok_or(MalformedXml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_delete_documents() {
        let doc = br#"<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a &amp; b</Key></Object><Object><Key>c</Key></Object></Delete>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Delete");
        assert_eq!(root.child("Quiet").unwrap().text, "true");
        let keys: Vec<_> = root.children_named("Object").map(|o| o.child("Key").unwrap().text.as_str()).collect();
        assert_eq!(keys, ["a & b", "c"]);
    }

    #[test]
    fn refuses_broken_documents() {
        for doc in [&b"<a><b></a>"[..], b"<a>", b"", b"text", b"<a/><b/>", b"<a></a><b></b>"] {
            assert!(parse(doc).is_err(), "{}", String::from_utf8_lossy(doc));
        }
        let flood = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS + 1));
        assert!(parse(flood.as_bytes()).is_err(), "element floods are refused");
    }

    /// Found by fuzzing (fuzz/fuzz_targets/xml_reader.rs): a raw NUL was
    /// taken into a CORS rule, which GetBucketCors then wrote as `&#x0;`,
    /// a document no XML reader (larder's neither) accepts.
    #[test]
    fn nul_is_refused_raw_as_escaped() {
        let cors = b"<CORSConfiguration><CORSRule><AllowedOrigin>\x08\x00\x00\x00://www.example.com</AllowedOrigin><AllowedMethod>PUT</AllowedMethod></CORSRule></CORSConfiguration>";
        assert!(parse(cors).is_err());
        for text in ["&#0;", "\0", "<![CDATA[\0]]>", &escape("\0")] {
            let doc = format!("<a>{text}</a>");
            assert!(parse(doc.as_bytes()).is_err(), "{doc}");
        }
        let other_controls = format!("<a>{}</a>", escape("\u{1}\u{8}\r"));
        assert_eq!(parse(other_controls.as_bytes()).unwrap().text, "\u{1}\u{8}\r");
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;&#x1;");
    }
}
