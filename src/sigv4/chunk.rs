//! aws-chunked signatures: each chunk of a `STREAMING-AWS4-HMAC-SHA256-*`
//! body is signed over the previous signature, starting from the seed
//! (the request's own signature); a signed trailer closes the chain.

use sha2::{Digest, Sha256};

use super::{ParsedAuth, Scope, SigningKey, EMPTY_SHA256};

/// The signature chain of one streaming upload.
pub struct ChunkChain {
    key: SigningKey,
    amz_date: String,
    scope: String,
    previous: String,
}

impl ChunkChain {
    /// Starts from the seed signature of a verified request.
    pub fn new(auth: &ParsedAuth, key: SigningKey) -> ChunkChain {
        ChunkChain::from_seed(key, &auth.amz_date, &auth.scope, &auth.signature)
    }

    /// Starts from a seed signature (the client side).
    pub fn from_seed(key: SigningKey, amz_date: &str, scope: &Scope, seed_signature: &str) -> ChunkChain {
        ChunkChain {
            key,
            amz_date: amz_date.to_string(),
            scope: scope.to_scope_string(),
            previous: seed_signature.to_string(),
        }
    }

    fn chunk_string_to_sign(&self, data_sha256: &[u8; 32]) -> String {
        format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(data_sha256)
        )
    }

    fn trailer_string_to_sign(&self, trailer: &[u8]) -> String {
        format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(Sha256::digest(trailer))
        )
    }

    /// Checks a chunk's signature (constant time) and moves the chain on.
    pub fn verify_chunk(&mut self, data_sha256: &[u8; 32], signature: &str) -> bool {
        let ok = self.key.matches(&self.chunk_string_to_sign(data_sha256), signature);
        if ok {
            self.previous = signature.to_string();
        }
        ok
    }

    /// Checks the trailer signature over the canonical trailer lines
    /// (`name:value\n` each).
    pub fn verify_trailer(&mut self, trailer: &[u8], signature: &str) -> bool {
        self.key.matches(&self.trailer_string_to_sign(trailer), signature)
    }

    /// The client side: signs the next chunk and moves the chain on.
    pub fn sign_chunk(&mut self, data: &[u8]) -> String {
        let signature = self.key.sign(&self.chunk_string_to_sign(&Sha256::digest(data).into()));
        self.previous = signature.clone();
        signature
    }

    /// The client side: signs the trailer lines.
    pub fn sign_trailer(&self, trailer: &[u8]) -> String {
        self.key.sign(&self.trailer_string_to_sign(trailer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::AuthKind;

    /// AWS's example from the SigV4 streaming documentation (see
    /// tests/data/aws-chunked-example.md).
    #[test]
    fn aws_streaming_example() {
        let scope = Scope { date: "20130524".into(), region: "us-east-1".into(), service: "s3".into() };
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &scope);
        let auth = ParsedAuth {
            kind: AuthKind::Header,
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            scope,
            signed_headers: String::new(),
            signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
            request_time: 0,
            amz_date: "20130524T000000Z".into(),
            expires: None,
            content_sha256: None,
            security_token: None,
        };
        let expected = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ];
        let chunks = [vec![b'a'; 65536], vec![b'a'; 1024], Vec::new()];
        let mut signer = ChunkChain::new(&auth, key.clone());
        let mut verifier = ChunkChain::new(&auth, key);
        for (chunk, signature) in chunks.iter().zip(expected) {
            assert_eq!(signer.sign_chunk(chunk), signature);
            let wrong = signature.replace('a', "b");
            assert!(!verifier.verify_chunk(&Sha256::digest(chunk).into(), &wrong));
            assert!(verifier.verify_chunk(&Sha256::digest(chunk).into(), signature));
        }
        let trailer = b"first:1st\nsecond:2nd\nthird:3rd\n";
        let trailer_signature = "df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c";
        assert_eq!(signer.sign_trailer(trailer), trailer_signature);
        assert!(verifier.verify_trailer(trailer, trailer_signature));
        assert!(!verifier.verify_trailer(b"first:1st\n", trailer_signature));
    }

    /// The seed signature of the example request, recomputed from its headers.
    #[test]
    fn aws_streaming_example_seed() {
        use http::{HeaderMap, HeaderValue};
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "s3.amazonaws.com"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("x-amz-date", "20130524T000000Z"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let scope = Scope { date: "20130524".into(), region: "us-east-1".into(), service: "s3".into() };
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &scope);
        let header = crate::sigv4::authorization_header(
            "PUT",
            b"/examplebucket/chunkObject.txt",
            &[],
            &headers,
            "AKIAIOSFODNN7EXAMPLE",
            &key,
            &scope,
        );
        assert!(
            header.ends_with("Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
            "{header}"
        );
    }
}
