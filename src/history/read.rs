//! requests.csv and events.csv read back, for `rollcheck report`. The collector writes whole
//! rows only, but a file can still end mid-row (a disk that filled up, a file copied while a
//! run was writing it): only the bytes up to the last newline are read, and what follows is
//! reported as a partial last row, never parsed.

use super::{EventRow, RequestRow};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{}: line {line}: unknown outcome {outcome:?}", path.display())]
    Outcome {
        path: PathBuf,
        line: u64,
        outcome: String,
    },
}

/// A CSV file of whole rows.
pub struct Rows {
    path: PathBuf,
    reader: csv::Reader<io::Take<File>>,
    /// Bytes after the last newline, left out.
    pub partial_bytes: u64,
}

impl Rows {
    pub fn open(path: &Path) -> Result<Rows, ReadError> {
        let io_err = |source| ReadError::Io {
            path: path.into(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let whole = whole_rows_len(&mut file).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        Ok(Rows {
            path: path.into(),
            reader: csv::Reader::from_reader(file.take(whole)),
            partial_bytes: len - whole,
        })
    }

    /// What the report says about a partial last row, if there was one.
    pub fn partial_note(&self) -> Option<String> {
        (self.partial_bytes > 0).then(|| {
            format!(
                "{}: a partial last row ({} bytes) was left out",
                self.path.display(),
                self.partial_bytes
            )
        })
    }

    /// Calls `each` with every request row, in file order.
    pub fn requests(
        &mut self,
        mut each: impl FnMut(crate::load::record::RequestRecord),
    ) -> Result<(), ReadError> {
        let headers = self.reader.headers().map_err(csv_err(&self.path))?.clone();
        let mut record = csv::StringRecord::new();
        while self
            .reader
            .read_record(&mut record)
            .map_err(csv_err(&self.path))?
        {
            let row: RequestRow<&str> = record
                .deserialize(Some(&headers))
                .map_err(csv_err(&self.path))?;
            let rec = row.record().ok_or_else(|| ReadError::Outcome {
                path: self.path.clone(),
                line: record.position().map_or(0, |p| p.line()),
                outcome: row.outcome.to_string(),
            })?;
            each(rec);
        }
        Ok(())
    }

    /// The next event row, `None` at the end.
    pub fn next_event(&mut self) -> Result<Option<EventRow>, ReadError> {
        let mut it = self.reader.deserialize::<EventRow>();
        match it.next() {
            None => Ok(None),
            Some(Ok(row)) => Ok(Some(row)),
            Some(Err(e)) => Err(csv_err(&self.path)(e)),
        }
    }

    /// Every event row, in file order.
    pub fn events(&mut self) -> Result<Vec<EventRow>, ReadError> {
        let mut out = Vec::new();
        while let Some(row) = self.next_event()? {
            out.push(row);
        }
        Ok(out)
    }
}

fn csv_err(path: &Path) -> impl FnOnce(csv::Error) -> ReadError + '_ {
    |source| ReadError::Csv {
        path: path.into(),
        source,
    }
}

/// Length of the file up to and including its last newline.
fn whole_rows_len(file: &mut File) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = file.metadata()?.len();
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_last_row_is_left_out_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        std::fs::write(
            &path,
            "at_ms,source,kind,subject,detail\n1.5,step,step_start,step 1: sleep,\n2.0,step,step_en",
        )
        .unwrap();
        let mut rows = Rows::open(&path).unwrap();
        let events = rows.events().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "step_start");
        assert_eq!(rows.partial_bytes, "2.0,step,step_en".len() as u64);
        assert!(
            rows.partial_note()
                .unwrap()
                .contains("partial last row (16 bytes)")
        );

        std::fs::write(&path, "at_ms,source,kind,subject,detail\n").unwrap();
        let mut rows = Rows::open(&path).unwrap();
        assert!(rows.events().unwrap().is_empty());
        assert_eq!(rows.partial_note(), None);
    }
}
