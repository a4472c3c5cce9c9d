//! The scheduler: filters drop the hosts that cannot take a server, weighers order the
//! rest. Pure: the caller passes the hosts with what they already carry.
//!
//! Filters: enabled, alive (heard of within three heartbeats), RAM, vCPU, disk, and the
//! requested host when the request names one. Weighers: most free RAM first (spread),
//! then fewest servers (least loaded), then the name (deterministic).

use crate::protocol::{Capacity, FlavorSpec, HostReport};

/// A host as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct HostState {
    pub report: HostReport,
    /// Heard of recently enough.
    pub alive: bool,
    /// The sizes of the servers it carries.
    pub used: Capacity,
    pub servers: u32,
}

/// No host fits; the message says why, as Nova's "No valid host was found. ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No valid host was found. {0}")]
pub struct NoValidHost(pub String);

/// Picks the host for a server of `flavor` (on `wanted` if given).
pub fn pick(hosts: &[HostState], flavor: &FlavorSpec, wanted: Option<&str>) -> Result<String, NoValidHost> {
    if hosts.is_empty() {
        return Err(NoValidHost("There are no compute hosts (start tenet-compute agent).".into()));
    }
    let mut reasons: Vec<String> = Vec::new();
    let mut fit: Vec<&HostState> = Vec::new();
    for h in hosts {
        let c = &h.report.capacity;
        let why = if wanted.is_some_and(|w| w != h.report.host) {
            None // not the requested host: not a reason worth reporting
        } else if !h.report.enabled {
            Some("disabled".to_string())
        } else if !h.alive {
            Some("not reporting".to_string())
        } else if h.used.ram_mb + flavor.ram_mb > c.ram_mb {
            Some(format!("{} MB RAM free, {} MB needed", c.ram_mb.saturating_sub(h.used.ram_mb), flavor.ram_mb))
        } else if h.used.vcpus + flavor.vcpus > c.vcpus {
            Some(format!("{} vCPUs free, {} needed", c.vcpus.saturating_sub(h.used.vcpus), flavor.vcpus))
        } else if h.used.disk_gb + flavor.disk_gb > c.disk_gb {
            Some(format!("{} GB disk free, {} GB needed", c.disk_gb.saturating_sub(h.used.disk_gb), flavor.disk_gb))
        } else {
            fit.push(h);
            continue;
        };
        if let Some(w) = why {
            reasons.push(format!("{}: {w}", h.report.host));
        }
    }
    if let Some(w) = wanted {
        if !hosts.iter().any(|h| h.report.host == w) {
            return Err(NoValidHost(format!("Host {w} is not a compute host.")));
        }
    }
    fit.sort_by(|a, b| {
        let free = |h: &HostState| h.report.capacity.ram_mb.saturating_sub(h.used.ram_mb);
        free(b).cmp(&free(a)).then(a.servers.cmp(&b.servers)).then(a.report.host.cmp(&b.report.host))
    });
    fit.first().map(|h| h.report.host.clone()).ok_or_else(|| NoValidHost(format!("{}.", reasons.join("; "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, ram: u64, used_ram: u64, servers: u32) -> HostState {
        HostState {
            report: HostReport {
                host: name.into(),
                url: String::new(),
                driver: "namespace".into(),
                capacity: Capacity { vcpus: 4, ram_mb: ram, disk_gb: 40 },
                enabled: true,
                bridge: "br".into(),
                datapath_id: 1,
                shared_storage: String::new(),
            },
            alive: true,
            used: Capacity { vcpus: 0, ram_mb: used_ram, disk_gb: 0 },
            servers,
        }
    }

    fn flavor(ram: u64) -> FlavorSpec {
        FlavorSpec { id: "f".into(), vcpus: 1, ram_mb: ram, disk_gb: 1 }
    }

    #[test]
    fn spreads_to_the_host_with_most_free_ram() {
        let hosts = [host("a", 4096, 2048, 2), host("b", 4096, 512, 1)];
        assert_eq!(pick(&hosts, &flavor(512), None), Ok("b".into()));
        // Equal free RAM: the least loaded, then the name.
        let hosts = [host("b", 4096, 0, 3), host("a", 4096, 0, 3), host("c", 4096, 0, 1)];
        assert_eq!(pick(&hosts, &flavor(512), None), Ok("c".into()));
    }

    #[test]
    fn says_why_no_host_fits() {
        let mut off = host("c", 8192, 0, 0);
        off.report.enabled = false;
        let mut dead = host("d", 8192, 0, 0);
        dead.alive = false;
        let hosts = [host("a", 1024, 768, 1), host("b", 1024, 0, 0), off, dead];
        let err = pick(&hosts, &flavor(2048), None).expect_err("nothing fits");
        assert!(err.to_string().starts_with("No valid host was found."), "{err}");
        for part in ["a: 256 MB RAM free, 2048 MB needed", "b: 1024 MB RAM free", "c: disabled", "d: not reporting"] {
            assert!(err.0.contains(part), "{err}");
        }
        assert!(pick(&[], &flavor(1), None).is_err());
    }

    #[test]
    fn honours_a_requested_host() {
        let hosts = [host("a", 4096, 0, 0), host("b", 4096, 3000, 0)];
        assert_eq!(pick(&hosts, &flavor(512), Some("b")), Ok("b".into()));
        assert!(pick(&hosts, &flavor(2048), Some("b")).is_err());
        assert_eq!(pick(&hosts, &flavor(1), Some("zz")), Err(NoValidHost("Host zz is not a compute host.".into())));
    }
}
