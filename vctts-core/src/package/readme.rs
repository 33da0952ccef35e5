//! The human-facing files of a package folder: `README.md` and the two
//! `sha256sum -c` lists, all rendered from the manifest so they can never
//! disagree with it (verify regenerates them and compares).

use super::manifest::Manifest;
use super::{Compression, checksums_file_name, manifest_file_name, part_checksums_file_name};

/// `bytes` with a binary unit, e.g. `1.5 GiB`, `512 B`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `NAME.pkg.sha256`: one `HASH  PATH` line per file, paths relative to the
/// restored folder.
pub(crate) fn file_checksums(m: &Manifest) -> String {
    m.files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect()
}

/// `NAME.pkg.parts.sha256`: one `HASH  PART` line per part.
pub(crate) fn part_checksums(m: &Manifest) -> String {
    m.parts
        .iter()
        .map(|p| format!("{}  {}\n", p.sha256, p.name))
        .collect()
}

/// The `README.md` of a package folder.
pub(crate) fn readme(m: &Manifest) -> String {
    let name = &m.name;
    let engine = m
        .engine
        .map(|e| format!(" for the `{e}` engine"))
        .unwrap_or_default();
    let first = m.parts.first().map(|p| p.name.as_str()).unwrap_or("");
    let last = m.parts.last().map(|p| p.name.as_str()).unwrap_or("");
    let (unpack, tool_note) = match m.compression {
        Compression::Gzip => (
            format!("cat {name}.pkg.part_* | tar -xz -C \"$DEST\""),
            "needs only `cat` and `tar` (any tar that reads gzip)",
        ),
        Compression::Zstd => (
            format!("cat {name}.pkg.part_* | zstd -d | tar -x -C \"$DEST\""),
            "needs `cat`, `zstd` and `tar`",
        ),
    };
    format!(
        "# Model package `{name}`\n\
         \n\
         This folder holds the `{name}` model{engine}: {files} files ({unpacked}) in a tar archive \
         compressed with {compression}, cut into {parts} parts of at most {part_size} \
         ({total} in all). Written by {tool} on {created}.\n\
         \n\
         | File | What it is |\n\
         |------|------------|\n\
         | `{first}` … `{last}` | the parts; they join in name order |\n\
         | `{manifest}` | size and SHA-256 of every part and every file |\n\
         | `{file_sums}` | file checksums for `sha256sum -c`, relative to the restored folder |\n\
         | `{part_sums}` | part checksums for `sha256sum -c`, relative to this folder |\n\
         \n\
         Keep all parts and the manifest together; copy the whole folder.\n\
         \n\
         ## Restore with vctts\n\
         \n\
         ```sh\n\
         vctts models verify PATH/TO/THIS/FOLDER               # optional: checks every part\n\
         vctts models restore PATH/TO/THIS/FOLDER --to DEST    # e.g. --to models/{name}\n\
         ```\n\
         \n\
         `restore` checks every part, extracts into a temporary folder beside `DEST`, checks the \
         size and SHA-256 of every file against the manifest, and only then moves the folder into \
         place, so `DEST` never holds a half-restored model. If `DEST` exists and is not empty, \
         add `--replace` to swap it for the restored one. The restored folder also gets \
         `{file_sums}`, so `vctts models list` can check it later.\n\
         \n\
         ## Restore with standard tools only\n\
         \n\
         This {tool_note}, plus `sha256sum` for the checks. Run it from this folder:\n\
         \n\
         ```sh\n\
         sha256sum -c {part_sums}        # every part must say OK\n\
         DEST=path/to/{name}                  # where the model should go\n\
         mkdir -p \"$DEST\"\n\
         {unpack}\n\
         (PKG=\"$PWD\"; cd \"$DEST\" && sha256sum -c \"$PKG/{file_sums}\")   # every file must say OK\n\
         ```\n\
         \n\
         If a part fails its check, copy that part again from the original source; the manifest \
         says which size and SHA-256 it must have.\n",
        files = m.files.len(),
        unpacked = human_bytes(m.unpacked_size),
        compression = m.compression,
        parts = m.parts.len(),
        part_size = human_bytes(m.part_size),
        total = human_bytes(m.total_size),
        tool = m.tool,
        created = m.created_at,
        manifest = manifest_file_name(name),
        file_sums = checksums_file_name(name),
        part_sums = part_checksums_file_name(name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 << 20), "100.0 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
