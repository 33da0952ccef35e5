//! Paths inside a package, and the rules that keep a restore inside its
//! destination.
//!
//! A package path is relative, `/`-separated and canonical: no empty, `.` or
//! `..` components, no leading `/`, valid UTF-8, no control characters and no
//! backslash (so it survives JSON, `sha256sum` lists and every OS). A symlink
//! target is resolved lexically against the link's folder and must stay
//! inside the package; because a lexical walk only matches what the OS does
//! when no component on the way is itself a symlink, a target may not go
//! *through* another symlink of the package (it may end on one: each link in
//! a chain is checked on its own).

/// Longest accepted path, in bytes.
const MAX_PATH_LEN: usize = 4096;

/// Why a component or character is refused, if it is.
fn component_problem(c: &str) -> Option<&'static str> {
    match c {
        "" => Some("has an empty component"),
        "." => Some("has a '.' component"),
        ".." => Some("has a '..' component that leaves the package"),
        _ if c.chars().any(char::is_control) => Some("contains a control character"),
        _ if c.contains('\\') => Some("contains a backslash"),
        _ => None,
    }
}

/// Checks a canonical package path as stored in a manifest or a checksum
/// list. Returns why it is refused.
pub(crate) fn check_package_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!("is longer than {MAX_PATH_LEN} bytes"));
    }
    if path.starts_with('/') {
        return Err("is absolute".into());
    }
    for c in path.split('/') {
        if let Some(why) = component_problem(c) {
            return Err(why.into());
        }
    }
    Ok(())
}

/// Normalises the raw path of a tar entry into a package path: strips `./`
/// components, repeated and trailing slashes; refuses absolute paths, `..`
/// components, non-UTF-8 names and anything [`check_package_path`] refuses.
pub(crate) fn normalize_entry_path(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "is not valid UTF-8".to_string())?;
    if text.starts_with('/') {
        return Err("is an absolute path".into());
    }
    let parts: Vec<&str> = text.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.is_empty() {
        return Err("names the package root".into());
    }
    let joined = parts.join("/");
    check_package_path(&joined)?;
    Ok(joined)
}

/// The proper ancestors of a package path, outermost first
/// (`a/b/c` gives `a`, `a/b`).
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Resolves the target of the symlink at package path `link` lexically,
/// relative to the link's folder. Returns the package path it points to (""
/// for the package root), or why it is refused: an absolute target, one that
/// leaves the package, or one that goes through another symlink (`is_link`
/// says which package paths are symlinks).
pub(crate) fn resolve_link_target(
    link: &str,
    target: &str,
    is_link: &dyn Fn(&str) -> bool,
) -> Result<String, String> {
    if target.is_empty() {
        return Err("has an empty target".into());
    }
    if target.starts_with('/') {
        return Err(format!("points to the absolute path {target:?}"));
    }
    if target.chars().any(char::is_control) || target.contains('\\') {
        return Err("has a target with a control character or backslash".into());
    }
    let mut stack: Vec<&str> = link.split('/').collect();
    stack.pop();
    let comps: Vec<&str> = target.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    for (i, c) in comps.iter().enumerate() {
        if *c == ".." {
            if stack.pop().is_none() {
                return Err(format!("points outside the package (target {target:?})"));
            }
            continue;
        }
        stack.push(c);
        let so_far = stack.join("/");
        if i + 1 < comps.len() && is_link(&so_far) {
            return Err(format!(
                "goes through the symlink {so_far:?} (target {target:?}); point at the real path instead"
            ));
        }
    }
    Ok(stack.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_paths() {
        for ok in ["a", "a/b.onnx", "base/en_US-x.onnx.json", "a b/c"] {
            check_package_path(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("a//b", "empty component"),
            ("a/./b", "'.'"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("a\nb", "control"),
            ("a\\b", "backslash"),
            ("a/", "empty component"),
        ] {
            let e = check_package_path(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn entry_paths_are_normalised_or_refused() {
        assert_eq!(normalize_entry_path(b"./a//b/").unwrap(), "a/b");
        assert_eq!(normalize_entry_path(b"dir/").unwrap(), "dir");
        assert!(normalize_entry_path(b"/abs").unwrap_err().contains("absolute"));
        assert!(normalize_entry_path(b"a/../../x").unwrap_err().contains(".."));
        assert!(normalize_entry_path(b"./").unwrap_err().contains("root"));
        assert!(normalize_entry_path(b"\xff").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn ancestry() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }

    #[test]
    fn link_targets() {
        let none = |_: &str| false;
        assert_eq!(resolve_link_target("l", "a/b", &none).unwrap(), "a/b");
        assert_eq!(resolve_link_target("x/l", "../a", &none).unwrap(), "a");
        assert_eq!(resolve_link_target("x/l", "..", &none).unwrap(), "");
        assert_eq!(resolve_link_target("x/y/l", "./../../z", &none).unwrap(), "z");
        assert!(
            resolve_link_target("l", "..", &none)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            resolve_link_target("x/l", "../../etc", &none)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            resolve_link_target("l", "/etc/passwd", &none)
                .unwrap_err()
                .contains("absolute")
        );
        assert!(resolve_link_target("l", "", &none).unwrap_err().contains("empty"));
        // d/l1 -> .. is the root; d/l2 -> l1/../.. would lexically be the root
        // but really is the root's parent: refused.
        let links = |p: &str| p == "d/l1";
        assert_eq!(resolve_link_target("d/l1", "..", &links).unwrap(), "");
        assert!(
            resolve_link_target("d/l2", "l1/../..", &links)
                .unwrap_err()
                .contains("through")
        );
        // Ending on a link is fine.
        assert_eq!(resolve_link_target("d/l2", "l1", &links).unwrap(), "d/l1");
    }
}
