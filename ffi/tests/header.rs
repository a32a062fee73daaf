//! The committed C header (`bindings/c/electrum_spv.h`) is what cbindgen makes of the
//! sources now, and documents every item.
//!
//! Regenerate after changing the ABI:
//! `REGENERATE_C_HEADER=1 cargo test -p electrum-spv-ffi --test header`

use std::path::PathBuf;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../bindings/c/electrum_spv.h")
}

fn generate() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("ffi/cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not parse ffi/src")
        .write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn committed_header_matches_the_sources() {
    let fresh = generate();
    let path = header_path();
    if std::env::var_os("REGENERATE_C_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write bindings/c/electrum_spv.h");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(fresh.lines().count()));
        panic!(
            "bindings/c/electrum_spv.h is out of date with ffi/src (first difference at line {}).\n\
             Regenerate it with:\n    REGENERATE_C_HEADER=1 cargo test -p electrum-spv-ffi --test header\n\
             and commit the result.",
            first + 1
        );
    }
}

/// Every `#define`, function, struct and field of the header carries a doc comment: the
/// header is the firmware author's only reference.
#[test]
fn every_item_is_documented() {
    let header = generate();
    let lines: Vec<&str> = header.lines().collect();
    // Items start after the include guard (the banner comment above it is prose).
    let start = lines
        .iter()
        .position(|l| l.starts_with("#define ELECTRUM_SPV_H"))
        .expect("include guard")
        + 1;
    let mut undocumented = Vec::new();
    let mut items = 0;
    for (i, line) in lines.iter().enumerate().skip(start) {
        let is_item = line.starts_with("#define ESPV_")
            || line.starts_with("typedef struct")
            || (line.starts_with("  ") && line.ends_with(';'))
            || (!line.starts_with("//") && line.contains("espv_") && line.ends_with(");"));
        if !is_item {
            continue;
        }
        items += 1;
        let doc = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim_start().starts_with("//"));
        if !doc {
            undocumented.push(format!("{}: {}", i + 1, line));
        }
    }
    assert!(
        items > 100,
        "only {items} items found: did the header format change?"
    );
    assert!(
        undocumented.is_empty(),
        "items without a doc comment:\n{}",
        undocumented.join("\n")
    );
}
