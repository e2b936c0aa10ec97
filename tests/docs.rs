//! The documentation: the README (the front door) and the manual in `docs/` (an mdBook). Every relative link
//! resolves — to a file or folder of the repository and, for `#anchor` links into Markdown, to a heading there (the
//! slug GitHub and mdBook both give it); every chapter is in `docs/src/SUMMARY.md` and every entry there exists;
//! every page with Rust examples is compiled as a doctest of the SDK; and the book builds with `mdbook`.
//! External links are not fetched.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use wssgate_tests::{require, scratch_dir, workspace_root};

/// The mdbook `./test.sh` installs, and how.
const MDBOOK_INSTALL: &str = "cargo install mdbook --version 0.5.4 --locked --no-default-features";

/// The README and every Markdown file of the book, relative to the workspace root.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    pages.extend(markdown_under(root, Path::new("docs/src")));
    pages
}

/// The `.md` files under `dir` (relative to `root`), recursively, sorted.
fn markdown_under(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = path.strip_prefix(root).unwrap().to_path_buf();
        if path.is_dir() {
            found.extend(markdown_under(root, &relative));
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(relative);
        }
    }
    found
}

/// A page's prose: its lines outside fenced code blocks, with each fence's lines blanked (so line numbers stay).
fn prose(text: &str) -> String {
    let mut fence: Option<String> = None;
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker: String = trimmed
            .chars()
            .take_while(|&c| c == '`' || c == '~')
            .collect();
        match &fence {
            Some(open) if marker.len() >= open.len() && marker.starts_with(&open[..1]) => {
                fence = None;
            }
            Some(_) => {}
            None if marker.len() >= 3 && line.len() - trimmed.len() < 4 => fence = Some(marker),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `prose` without its inline code spans (which may span lines, never a blank line).
fn without_code_spans(prose: &str) -> String {
    let chars: Vec<char> = prose.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // The closing run: the same number of backticks, before the paragraph ends.
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '\n' && chars.get(j + 1) == Some(&'\n') {
                break;
            }
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|&&c| c == '`').count();
                if other == run {
                    close = Some(j + other);
                    break;
                }
                j += other;
                continue;
            }
            j += 1;
        }
        match close {
            Some(end) => {
                // Keep the newlines, so line numbers stay right.
                out.extend(chars[i..end].iter().filter(|&&c| c == '\n'));
                i = end;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The targets of a page's links — inline `[text](target "title")`, images and reference definitions — with their
/// line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let prose = without_code_spans(&prose(text));
    let mut found = Vec::new();
    for (index, line) in prose.lines().enumerate() {
        let number = index + 1;
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            // The target ends at the parenthesis that closes the one after `]`.
            let mut depth = 1;
            let end = after
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(after.len(), |(i, _)| i);
            let target = after[..end].trim();
            let target = target
                .split_once(" \"")
                .map_or(target, |(url, _title)| url)
                .trim_matches(|c| c == '<' || c == '>');
            found.push((number, target.to_owned()));
            rest = &after[end..];
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some((label, target)) = trimmed.split_once("]:")
            && !label.contains("](")
        {
            let target = target.split_whitespace().next().unwrap_or("");
            found.push((number, target.to_owned()));
        }
    }
    found
}

/// The anchors of a page's headings: the slug GitHub and mdBook both give each (lower case; letters, digits, `_`
/// and `-` kept; spaces become `-`; everything else dropped; a repeated slug gets `-1`, `-2`, …). A heading whose
/// GitHub and mdBook slugs differ (non-ASCII capitals) gets neither, so a link to it fails here.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut anchors = HashSet::new();
    for line in prose(text).lines() {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let title = line[hashes..].trim().trim_end_matches('#').trim();
        // The heading's text as rendered: no code or emphasis markers, a link's text without its target.
        let mut rendered = String::new();
        let mut rest = title;
        while let Some(start) = rest.find("](") {
            rendered.push_str(&rest[..start]);
            rest = rest[start..].split_once(')').map_or("", |(_, after)| after);
        }
        rendered.push_str(rest);
        let rendered: String = rendered
            .chars()
            .filter(|&c| !matches!(c, '`' | '*' | '['))
            .collect();
        let slug = |lower: &dyn Fn(char) -> String| -> String {
            rendered
                .chars()
                .filter_map(|c| {
                    if c.is_alphanumeric() || c == '_' || c == '-' {
                        Some(lower(c))
                    } else if c == ' ' {
                        Some("-".into())
                    } else {
                        None
                    }
                })
                .collect()
        };
        let github = slug(&|c: char| c.to_lowercase().collect());
        let mdbook = slug(&|c: char| c.to_ascii_lowercase().to_string());
        if github != mdbook {
            continue;
        }
        let mut anchor = github.clone();
        let mut n = 0;
        while !seen.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{github}-{n}");
        }
        anchors.insert(anchor);
    }
    anchors
}

/// What is wrong with the relative links of the pages under `root` (README.md and docs/src), one line each.
fn broken_links(root: &Path, pages: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        for (line, target) in links(&text) {
            let at = format!("{}:{line}: link `{target}`", page.display());
            if target.contains("://") || target.starts_with("mailto:") {
                continue; // external: not fetched
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            if path.is_empty() && anchor.is_empty() {
                broken.push(format!("{at}: empty target"));
                continue;
            }
            let file = if path.is_empty() {
                root.join(page)
            } else if path.starts_with('/') {
                broken.push(format!(
                    "{at}: absolute path (relative links work on GitHub and in the book)"
                ));
                continue;
            } else {
                root.join(page).parent().unwrap().join(path)
            };
            if !file.exists() {
                broken.push(format!("{at}: no such file or folder"));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            if file.extension().is_none_or(|e| e != "md") {
                broken.push(format!("{at}: an anchor into a file that is not Markdown"));
                continue;
            }
            let headings = anchors(&std::fs::read_to_string(&file).unwrap());
            if !headings.contains(anchor) {
                let mut known: Vec<_> = headings.into_iter().collect();
                known.sort();
                broken.push(format!(
                    "{at}: no heading `#{anchor}` (there: {})",
                    known.join(", ")
                ));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_readme_and_the_book_resolves() {
    let root = workspace_root();
    let pages = pages(&root);
    assert!(
        pages.len() > 10,
        "the book's chapters are missing: {pages:?}"
    );
    let checked: usize = pages
        .iter()
        .map(|page| links(&std::fs::read_to_string(root.join(page)).unwrap()).len())
        .sum();
    assert!(
        checked > 30,
        "only {checked} links found: the checker is blind"
    );
    let broken = broken_links(&root, &pages);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_checker_finds_missing_files_and_headings() {
    let root = scratch_dir("docs-links");
    std::fs::create_dir_all(root.join("docs/src")).unwrap();
    std::fs::write(root.join("LICENSE"), "").unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Top\n\nSee [a](docs/src/a.md#the-sdks-shape), [b](docs/src/a.md#nope), [c](missing.md), [d](LICENSE),\n\
         [e](#top), [f](https://example.com/x.md), `[g](in-code.md)`, [h](#reloading-1).\n\n\
         ```sh\n[i](in-a-fence.md)\n```\n\n[j]: docs/src/gone.md\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docs/src/a.md"),
        "# The SDK's shape\n\n## Reloading\n\n## Reloading\n\n```toml\n# not-a-heading\n```\n",
    )
    .unwrap();
    let pages = vec![PathBuf::from("README.md")];
    let broken = broken_links(&root, &pages).join("\n");
    let expected = [
        "README.md:3: link `docs/src/a.md#nope`: no heading",
        "README.md:3: link `missing.md`: no such file",
        "README.md:4: link `#reloading-1`: no heading",
        "README.md:10: link `docs/src/gone.md`: no such file",
    ];
    for line in expected {
        assert!(broken.contains(line), "missed {line:?} in:\n{broken}");
    }
    assert_eq!(broken.lines().count(), expected.len(), "{broken}");
    assert_eq!(
        anchors(&std::fs::read_to_string(root.join("docs/src/a.md")).unwrap()),
        HashSet::from([
            "the-sdks-shape".to_owned(),
            "reloading".to_owned(),
            "reloading-1".to_owned()
        ])
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The chapters `docs/src/SUMMARY.md` lists, as paths relative to `docs/src`.
fn summary_entries(root: &Path) -> Vec<(usize, String)> {
    let summary = std::fs::read_to_string(root.join("docs/src/SUMMARY.md")).unwrap();
    links(&summary)
}

#[test]
fn every_chapter_is_in_the_summary_and_every_summary_entry_exists() {
    let root = workspace_root();
    let src = root.join("docs/src");
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for (line, target) in summary_entries(&root) {
        if target.is_empty() {
            problems.push(format!(
                "SUMMARY.md:{line}: a draft chapter (no file): write it or drop it"
            ));
        } else if !target.ends_with(".md") || target.contains('#') {
            problems.push(format!(
                "SUMMARY.md:{line}: `{target}` is not a chapter file"
            ));
        } else if !src.join(&target).is_file() {
            problems.push(format!(
                "SUMMARY.md:{line}: `{target}` does not exist in docs/src"
            ));
        } else if !listed.insert(PathBuf::from(&target)) {
            problems.push(format!("SUMMARY.md:{line}: `{target}` is listed twice"));
        }
    }
    for chapter in markdown_under(&root, Path::new("docs/src")) {
        let chapter = chapter.strip_prefix("docs/src").unwrap().to_path_buf();
        if chapter != Path::new("SUMMARY.md") && !listed.contains(&chapter) {
            problems.push(format!(
                "docs/src/{} is not in SUMMARY.md, so the book leaves it out",
                chapter.display()
            ));
        }
    }
    assert!(listed.len() > 10, "SUMMARY.md lists only {listed:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_page_with_rust_examples_is_a_doctest_of_the_sdk() {
    let root = workspace_root();
    let sdk = std::fs::read_to_string(root.join("guest-sdk/rust/src/lib.rs")).unwrap();
    let mut missing = Vec::new();
    let mut with_rust = 0;
    for page in pages(&root) {
        let text = std::fs::read_to_string(root.join(&page)).unwrap();
        if !text.lines().any(|line| line.trim_start() == "```rust") {
            continue;
        }
        with_rust += 1;
        let include = format!("#[doc = include_str!(\"../../../{}\")]", page.display());
        if !sdk.contains(&include) {
            missing.push(format!(
                "{} has Rust examples, but guest-sdk/rust/src/lib.rs lacks `{include}` (under #[cfg(doctest)])",
                page.display()
            ));
        }
    }
    assert!(with_rust >= 3, "only {with_rust} pages with Rust examples");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// `name` on the PATH, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

#[test]
#[ignore = "needs mdbook: ./test.sh installs it and runs this test"]
fn the_book_builds_with_mdbook() {
    let mdbook = on_path("mdbook");
    require("mdbook (on the PATH)", mdbook.is_some(), MDBOOK_INSTALL);
    let root = workspace_root();
    let out = scratch_dir("mdbook");
    let built = Command::new(mdbook.unwrap())
        .arg("build")
        .arg(root.join("docs"))
        .arg("--dest-dir")
        .arg(&out)
        .output()
        .expect("running mdbook");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(built.status.success(), "mdbook build failed:\n{log}");
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "mdbook warned:\n{log}"
    );
    for (_, chapter) in summary_entries(&root) {
        let page = out.join(Path::new(&chapter).with_extension("html"));
        assert!(page.is_file(), "mdbook wrote no {}:\n{log}", page.display());
    }
    let _ = std::fs::remove_dir_all(&out);
}
