//! The guest's layers import only downwards: protocol → ops → persist → rules → model. A module
//! that names a higher layer (outside its tests) would start an import cycle between layers.

use std::path::Path;

const LAYERS: [&str; 5] = ["model", "rules", "persist", "ops", "protocol"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

/// The source without comments and without its `#[cfg(test)]` module.
fn production_code(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    match code.find("#[cfg(test)]\nmod ") {
        Some(at) => code[..at].to_string(),
        None => code,
    }
}

/// The module names a path after `crate::` starts with: one, or each of a `{a::x, b}` group.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let (mut depth, mut names, mut start) = (0, Vec::new(), 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    names
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Test-only folders may drive the whole stack.
            if path.file_name().unwrap() != "tests" {
                visit(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().unwrap() != "tests.rs"
        {
            files.push(path);
        }
    }
}

#[test]
fn layers_import_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for layer in LAYERS {
        let own = rank(layer).unwrap();
        let mut files = Vec::new();
        visit(&src.join(layer), &mut files);
        for file in files {
            checked += 1;
            let code = production_code(&std::fs::read_to_string(&file).unwrap());
            for (at, _) in code.match_indices("crate::") {
                for named in first_segments(&code[at + "crate::".len()..]) {
                    if rank(&named).is_some_and(|r| r > own) {
                        violations.push(format!(
                            "{} ({layer}) uses crate::{named}",
                            file.strip_prefix(&src).unwrap().display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} files found under {}",
        src.display()
    );
    assert!(violations.is_empty(), "{violations:#?}");
}
