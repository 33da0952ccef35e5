//! Progress reporting for long package operations.
//!
//! Core knows no terminal: it calls a [`Progress`] with byte counts and the
//! item being worked on, and the front end draws what it likes. Reports are
//! throttled (at most one per [`REPORT_EVERY`] bytes, plus one whenever the
//! item or stage changes and one at the end), so a callback may do real work.

/// Bytes between two throttled reports (1 MiB).
pub const REPORT_EVERY: u64 = 1 << 20;

/// What a package operation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Reading and compressing the model files (bytes are file bytes).
    Pack,
    /// Checking the SHA-256 of every part (bytes are part bytes).
    Verify,
    /// Extracting and checking the files (bytes are file bytes).
    Restore,
}

impl Stage {
    /// A lower-case verb for messages ("packing", "verifying", "restoring").
    pub fn verb(self) -> &'static str {
        match self {
            Stage::Pack => "packing",
            Stage::Verify => "verifying",
            Stage::Restore => "restoring",
        }
    }
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressEvent<'a> {
    /// The stage the numbers belong to; a new stage starts from zero.
    pub stage: Stage,
    /// Bytes done in this stage.
    pub bytes_done: u64,
    /// Bytes this stage will process in all (known up front from the folder
    /// or the manifest).
    pub bytes_total: u64,
    /// The file or part being processed ("" when none).
    pub item: &'a str,
}

/// Receives progress reports. Any `FnMut(&ProgressEvent)` is a `Progress`.
pub trait Progress {
    /// Called with the current numbers; see the module docs for how often.
    fn report(&mut self, event: &ProgressEvent<'_>);
}

impl<F: FnMut(&ProgressEvent<'_>)> Progress for F {
    fn report(&mut self, event: &ProgressEvent<'_>) {
        self(event)
    }
}

/// A [`Progress`] that ignores every report.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _event: &ProgressEvent<'_>) {}
}

/// Counts bytes for one stage and reports them, throttled.
pub(crate) struct Meter<'p> {
    progress: &'p mut dyn Progress,
    stage: Stage,
    done: u64,
    total: u64,
    reported: u64,
    item: String,
}

impl<'p> Meter<'p> {
    /// Starts a stage and reports zero bytes done.
    pub(crate) fn start(progress: &'p mut dyn Progress, stage: Stage, total: u64) -> Self {
        let mut meter = Meter {
            progress,
            stage,
            done: 0,
            total,
            reported: 0,
            item: String::new(),
        };
        meter.emit();
        meter
    }

    /// Names the item now being processed, and reports.
    pub(crate) fn item(&mut self, item: &str) {
        item.clone_into(&mut self.item);
        self.emit();
    }

    /// Adds bytes; reports if enough accumulated since the last report.
    pub(crate) fn add(&mut self, bytes: u64) {
        self.done += bytes;
        if self.done - self.reported >= REPORT_EVERY {
            self.emit();
        }
    }

    /// Reports the final numbers of the stage.
    pub(crate) fn finish(&mut self) {
        self.item.clear();
        self.emit();
    }

    fn emit(&mut self) {
        self.reported = self.done;
        self.progress.report(&ProgressEvent {
            stage: self.stage,
            bytes_done: self.done,
            bytes_total: self.total,
            item: &self.item,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_throttles_and_reports_items_and_end() {
        let mut seen: Vec<(u64, String)> = Vec::new();
        let mut sink = |e: &ProgressEvent<'_>| {
            assert_eq!(e.stage, Stage::Pack);
            assert_eq!(e.bytes_total, 10 * REPORT_EVERY);
            seen.push((e.bytes_done, e.item.to_string()));
        };
        let mut meter = Meter::start(&mut sink, Stage::Pack, 10 * REPORT_EVERY);
        meter.item("a.onnx");
        for _ in 0..4 {
            meter.add(REPORT_EVERY / 2);
        }
        meter.finish();
        drop(meter);
        assert_eq!(
            seen,
            vec![
                (0, String::new()),
                (0, "a.onnx".to_string()),
                (REPORT_EVERY, "a.onnx".to_string()),
                (2 * REPORT_EVERY, "a.onnx".to_string()),
                (2 * REPORT_EVERY, String::new()),
            ]
        );
    }
}
