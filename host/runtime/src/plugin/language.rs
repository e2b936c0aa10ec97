//! The language a plugin was written in, as the SDK's build tool records it, for what differs by language: the
//! default memory cap and CPU deadline.
//!
//! A JavaScript engine's garbage collector does not know the gateway's cap: StarlingMonkey lets its heap grow to
//! about 67 MiB before collecting, so a plain echo plugin outgrows the 64 MiB that suits Rust and Python (measured:
//! 11 MiB at start, 67 MiB after 200,000 echoes and flat from there through 400,000; with a 64 MiB cap it trapped
//! after about 170,000). CPython frees as it goes (12 MiB, flat through 150,000 echoes).
//!
//! `wssgate-build` (TypeScript) and `python -m wssgate.build` put a custom section named [`SECTION`] holding
//! `javascript` or `python` right after the header of the component they make; anything else is
//! [`Language::Other`].

use std::time::Duration;
use wasmparser::{Parser, Payload};

/// The custom section the SDKs' build tools write.
pub const SECTION: &str = "wssgate-language";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    JavaScript,
    Python,
    /// Rust, or a component no SDK build tool made.
    Other,
}

impl Language {
    /// The language `wasm` records; only the component's own sections are read, not its modules'.
    pub fn of(wasm: &[u8]) -> Language {
        for payload in Parser::new(0).parse_all(wasm) {
            match payload {
                Ok(Payload::CustomSection(section)) if section.name() == SECTION => {
                    return match section.data() {
                        b"javascript" => Language::JavaScript,
                        b"python" => Language::Python,
                        _ => Language::Other,
                    };
                }
                // The build tools write their section first: past the first core module there is nothing of
                // theirs to find, and reading on would parse the whole component.
                Ok(Payload::ModuleSection { .. }) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Language::Other
    }

    /// `event_deadline_ms`'s default for a plugin in this language.
    pub fn default_event_deadline(self) -> Duration {
        match self {
            // A collection of a heap near the collector's 67 MiB plateau took 5–50 ms of CPU time in an echo plugin
            // (365 of 300,000 events), and once, on a loaded machine, 52 ms: past 50 ms, a healthy plugin traps.
            Language::JavaScript => Duration::from_millis(200),
            Language::Python | Language::Other => Duration::from_millis(50),
        }
    }

    /// `max_memory_mib`'s default for a plugin in this language.
    pub fn default_memory_cap(self) -> usize {
        match self {
            // About twice what the engine's collector lets an echo plugin's heap reach.
            Language::JavaScript => 128 << 20,
            Language::Python | Language::Other => 64 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component's header (`\0asm`, version 13, layer 1) and then `sections`.
    fn component(sections: &[&[u8]]) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        sections.iter().for_each(|s| bytes.extend_from_slice(s));
        bytes
    }

    /// A custom section `name` holding `data`.
    fn custom(name: &str, data: &[u8]) -> Vec<u8> {
        let mut contents = vec![name.len() as u8];
        contents.extend_from_slice(name.as_bytes());
        contents.extend_from_slice(data);
        let mut section = vec![0, contents.len() as u8];
        section.extend(contents);
        section
    }

    #[test]
    fn the_section_the_build_tools_write_names_the_language() {
        let js = custom(SECTION, b"javascript");
        let py = custom(SECTION, b"python");
        assert_eq!(Language::of(&component(&[&js])), Language::JavaScript);
        assert_eq!(Language::of(&component(&[&py])), Language::Python);
        assert_eq!(
            Language::of(&component(&[&custom("other", b"x"), &py])),
            Language::Python
        );
        assert_eq!(
            Language::of(&component(&[&custom(SECTION, b"cobol")])),
            Language::Other
        );
        assert_eq!(Language::of(&component(&[])), Language::Other);
        assert_eq!(Language::of(b"not wasm at all"), Language::Other);
        assert_eq!(Language::JavaScript.default_memory_cap(), 128 << 20);
        assert_eq!(Language::Other.default_memory_cap(), 64 << 20);
        assert_eq!(
            Language::JavaScript.default_event_deadline(),
            Duration::from_millis(200)
        );
        assert_eq!(
            Language::Python.default_event_deadline(),
            Duration::from_millis(50)
        );
    }
}
