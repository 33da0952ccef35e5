//! Where `vctts synth` writes: a file or standard output.
//!
//! Invariants:
//! - a whole (non-streamed) file appears atomically: the bytes go to a hidden
//!   `.NAME.XXXX.part` beside it as they are made (memory stays flat), a
//!   WAV's header gets its real sizes, the file is synced, then renamed; on
//!   any failure the `.part` is removed, so nothing half-written is ever left
//!   behind;
//! - a streamed file (`--stream`) is written in place as chunks arrive (so it
//!   can be played while it grows) and removed again if synthesis fails;
//!   a streamed WAV gets its real sizes written into the header at the end;
//! - every error names the user's path, never the hidden `.part`;
//! - binary audio is never written to a terminal: `-o -` on a terminal is
//!   refused before any work is done.

use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use vctts_core::{Error, Result};

/// An open output.
pub enum Output {
    /// Standard output.
    Stdout(std::io::Stdout),
    /// A temporary file renamed onto `path` by [`Output::finish`].
    Atomic {
        path: PathBuf,
        tmp: tempfile::NamedTempFile,
    },
    /// `path` itself, written as chunks arrive.
    InPlace { path: PathBuf, file: Option<File> },
}

/// Refuses `-o -` when standard output is a terminal.
pub fn check_stdout_target(output: &Path) -> Result<()> {
    if output.as_os_str() == "-" && std::io::stdout().is_terminal() {
        return Err(Error::invalid(
            "output",
            "standard output is a terminal: redirect it (vctts synth … -o - > out.wav) \
             or give a file with -o FILE",
        ));
    }
    Ok(())
}

/// The error without the hidden temporary path `tempfile` adds to it.
fn without_path(e: std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::from(e.kind()),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("writing {}", path.display()), e)
}

impl Output {
    /// Opens `output` (`-` is standard output); `stream` writes a file in
    /// place instead of atomically.
    pub fn open(output: &Path, stream: bool) -> Result<Self> {
        if output.as_os_str() == "-" {
            check_stdout_target(output)?;
            return Ok(Self::Stdout(std::io::stdout()));
        }
        if output.is_dir() {
            return Err(Error::invalid(
                "output",
                format!("{} is a folder: give a file name", output.display()),
            ));
        }
        if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(Error::invalid(
                    "output",
                    format!(
                        "cannot write {}: the folder {} does not exist",
                        output.display(),
                        parent.display()
                    ),
                ));
            }
        }
        if stream {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(output)
                .map_err(|e| io_error(output, e))?;
            return Ok(Self::InPlace {
                path: output.to_path_buf(),
                file: Some(file),
            });
        }
        let dir = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = output.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| io_error(output, without_path(e)))?;
        Ok(Self::Atomic {
            path: output.to_path_buf(),
            tmp,
        })
    }

    /// The path to name in messages (`-` for standard output).
    pub fn path(&self) -> &Path {
        match self {
            Self::Stdout(_) => Path::new("-"),
            Self::Atomic { path, .. } | Self::InPlace { path, .. } => path,
        }
    }

    /// Writes bytes; a stream's are flushed at once.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = self.path().to_path_buf();
        let r = match self {
            Self::Stdout(out) => {
                let mut lock = out.lock();
                lock.write_all(bytes).and_then(|_| lock.flush())
            }
            Self::Atomic { tmp, .. } => tmp.write_all(bytes),
            Self::InPlace { file, .. } => match file.as_mut() {
                Some(f) => f.write_all(bytes).and_then(|_| f.flush()),
                None => Ok(()),
            },
        };
        r.map_err(|e| {
            if path.as_os_str() == "-" {
                Error::io("writing to standard output", e)
            } else {
                io_error(&path, e)
            }
        })
    }

    /// Completes the output: renames the atomic file into place, or fixes
    /// a streamed WAV's header sizes.
    pub fn finish(self) -> Result<()> {
        match self {
            Self::Stdout(_) => Ok(()),
            Self::Atomic { path, mut tmp } => {
                // Written as it was made, a WAV states unknown sizes until here.
                fix_streamed_wav(tmp.as_file_mut()).map_err(|e| io_error(&path, without_path(e)))?;
                tmp.as_file().sync_all().map_err(|e| io_error(&path, e))?;
                // On failure the NamedTempFile inside the error is dropped,
                // which removes the .part.
                tmp.persist(&path)
                    .map_err(|e| io_error(&path, without_path(e.error)))?;
                Ok(())
            }
            Self::InPlace { path, mut file } => {
                if let Some(f) = file.as_mut() {
                    fix_streamed_wav(f).map_err(|e| io_error(&path, e))?;
                    f.sync_all().map_err(|e| io_error(&path, e))?;
                }
                Ok(())
            }
        }
    }

    /// Gives up: removes a half-written streamed file (an atomic `.part`
    /// goes with the temporary file).
    pub fn abandon(self) {
        if let Self::InPlace { path, file } = self {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes the real RIFF, `data` (and float `fact`) sizes into a WAV that
/// was streamed with unknown sizes. Anything that is not such a WAV is left
/// untouched.
fn fix_streamed_wav(f: &mut File) -> std::io::Result<()> {
    let len = f.seek(SeekFrom::End(0))?;
    let mut head = [0u8; 128];
    f.seek(SeekFrom::Start(0))?;
    let n = read_up_to(f, &mut head)?;
    let head = &head[..n];
    if n < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Ok(());
    }
    let mut patches: Vec<(u64, u32)> = vec![(4, clamp(len - 8))];
    let mut at = 12usize;
    let mut block_align = 0u32;
    while at + 8 <= head.len() {
        let id = &head[at..at + 4];
        let size = u32::from_le_bytes([head[at + 4], head[at + 5], head[at + 6], head[at + 7]]);
        match id {
            b"fmt " if at + 20 <= head.len() => {
                block_align = u16::from_le_bytes([head[at + 20], head[at + 21]]) as u32;
            }
            b"data" => {
                let data = len - (at as u64 + 8);
                patches.push((at as u64 + 4, clamp(data)));
                if let Some(fact) = find_chunk(head, b"fact") {
                    if block_align > 0 {
                        patches.push((fact as u64 + 8, clamp(data / block_align as u64)));
                    }
                }
                break;
            }
            _ => {}
        }
        if size == u32::MAX {
            break;
        }
        at += 8 + size as usize + (size as usize & 1);
    }
    for (offset, value) in patches {
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(&value.to_le_bytes())?;
    }
    f.seek(SeekFrom::End(0))?;
    Ok(())
}

fn find_chunk(head: &[u8], id: &[u8; 4]) -> Option<usize> {
    let mut at = 12usize;
    while at + 8 <= head.len() {
        if &head[at..at + 4] == id {
            return Some(at);
        }
        let size = u32::from_le_bytes([head[at + 4], head[at + 5], head[at + 6], head[at + 7]]);
        if size == u32::MAX {
            return None;
        }
        at += 8 + size as usize + (size as usize & 1);
    }
    None
}

fn clamp(v: u64) -> u32 {
    v.min(u32::MAX as u64) as u32
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vctts_engines::audio::encoders::{StreamEncoder, encode_all};
    use vctts_engines::audio::format::AudioFormat;

    fn streamed_file(format: AudioFormat, pieces: &[Vec<f32>], path: &Path) {
        let mut out = Output::open(path, true).unwrap();
        let mut enc = StreamEncoder::new(format, 22_050, None).unwrap();
        for p in pieces {
            out.write(&enc.push(p).unwrap()).unwrap();
        }
        out.write(&enc.finish().unwrap()).unwrap();
        out.finish().unwrap();
    }

    #[test]
    fn a_streamed_wav_gets_the_sizes_of_a_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let pieces: Vec<Vec<f32>> = (0..3)
            .map(|k| {
                (0..1000)
                    .map(|i| ((i + k * 1000) as f32 * 0.01).sin() * 0.5)
                    .collect()
            })
            .collect();
        let all: Vec<f32> = pieces.concat();
        for format in [AudioFormat::Wav, AudioFormat::WavF32] {
            let path = dir.path().join(format!("{format:?}.wav"));
            streamed_file(format, &pieces, &path);
            let whole = encode_all(&vctts_core::Audio::new(all.clone(), 22_050), format, None).unwrap();
            let streamed = std::fs::read(&path).unwrap();
            assert_eq!(streamed, whole, "{format:?}");
        }
    }

    #[test]
    fn a_file_written_as_it_is_made_equals_the_whole_encoding() {
        // What `vctts synth` does without --stream: pieces go to the hidden
        // file as they come, and the finished file is the whole clip's.
        let dir = tempfile::tempdir().unwrap();
        let pieces: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                (0..(3000 + 977 * k))
                    .map(|i| ((i * (k + 1)) as f32 * 0.007).sin() * 0.6)
                    .collect()
            })
            .collect();
        let all: Vec<f32> = pieces.concat();
        for format in AudioFormat::ALL {
            let path = dir.path().join(format!("whole.{}", format.extension()));
            let mut out = Output::open(&path, false).unwrap();
            let mut enc = StreamEncoder::file(format, 22_050, None).unwrap();
            for p in &pieces {
                out.write(&enc.push(p).unwrap()).unwrap();
            }
            out.write(&enc.finish().unwrap()).unwrap();
            out.finish().unwrap();
            let whole = encode_all(&vctts_core::Audio::new(all.clone(), 22_050), format, None).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), whole, "{format:?}");
        }
    }

    #[test]
    fn other_formats_are_left_as_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pcm");
        streamed_file(AudioFormat::Pcm, &[vec![0.25; 100]], &path);
        assert_eq!(std::fs::read(&path).unwrap().len(), 200);
    }

    #[test]
    fn a_failed_atomic_write_leaves_no_part_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("busy");
        // A non-empty folder cannot be replaced by a file.
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        let err = Output::open(&target, false).err().unwrap();
        assert!(err.to_string().contains("busy"), "{err}");
        let mut out = Output::open(&dir.path().join("ok.wav"), false).unwrap();
        out.write(b"abc").unwrap();
        // Replace the target by a folder before the rename.
        std::fs::create_dir(dir.path().join("ok.wav")).unwrap();
        std::fs::write(dir.path().join("ok.wav/y"), b"y").unwrap();
        let err = out.finish().unwrap_err().to_string();
        assert!(err.contains("ok.wav") && !err.contains(".part"), "{err}");
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn an_abandoned_stream_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let mut out = Output::open(&path, true).unwrap();
        out.write(b"RIFF").unwrap();
        out.abandon();
        assert!(!path.exists());
    }
}
