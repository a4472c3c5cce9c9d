//! `tenet-controller ips-ship`: follows an IPS instance's Suricata eve.json and ships
//! every new complete line to a tenant-mode controller (`POST /v1/ips/events`), which
//! attributes alerts and drops to tenant ports (`GET /v1/ips/alerts`).

use std::io::{Read, Seek, SeekFrom};
use std::process::ExitCode;
use std::time::Duration;

/// Options of the subcommand.
pub struct Options {
    pub eve: std::path::PathBuf,
    pub port_pair: String,
    pub api: String,
    pub once: bool,
    pub interval: Duration,
}

/// Runs the subcommand: 0 when `--once` shipped everything, 2 when it cannot go on.
pub fn main(o: &Options) -> ExitCode {
    if o.once && !o.eve.exists() {
        eprintln!("tenet-controller ips-ship: {} does not exist", o.eve.display());
        return ExitCode::from(2);
    }
    let mut offset = 0u64;
    loop {
        match ship_new(o, &mut offset) {
            Ok(n) if n > 0 => eprintln!("tenet-controller ips-ship: shipped {n} event line(s)"),
            Ok(_) => {}
            Err(e) => {
                eprintln!("tenet-controller ips-ship: {e}");
                if o.once {
                    return ExitCode::from(2);
                }
            }
        }
        if o.once {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(o.interval.max(Duration::from_millis(50)));
    }
}

/// Ships the complete lines after `offset` and moves it past them; a file that shrank
/// (rotated) is read from its start.
fn ship_new(o: &Options, offset: &mut u64) -> Result<usize, String> {
    let mut f = match std::fs::File::open(&o.eve) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", o.eve.display())),
    };
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if len < *offset {
        *offset = 0;
    }
    f.seek(SeekFrom::Start(*offset)).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else { return Ok(0) };
    let chunk = String::from_utf8_lossy(&buf[..=end]);
    let lines = chunk.lines().filter(|l| !l.trim().is_empty()).count();
    if lines > 0 {
        let path = format!("/v1/ips/events?port_pair={}", o.port_pair);
        crate::verify::call(&o.api, "POST", &path, Some(&chunk))?;
    }
    *offset += end as u64 + 1;
    Ok(lines)
}
