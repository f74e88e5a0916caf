//! Address arithmetic for the lab network and the per-run overlays: CIDRs in use by the
//! engine's networks and the host's routes, and a free /24.

use super::*;

pub(super) fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (addr, len) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(addr) & mask, mask))
}

/// The IPv4 subnets `networks` are configured with.
pub(super) fn subnets_of(networks: &[bollard::models::Network]) -> Vec<(u32, u32)> {
    networks
        .iter()
        .filter_map(|n| n.ipam.as_ref()?.config.clone())
        .flatten()
        .filter_map(|c| parse_cidr(c.subnet.as_deref()?))
        .collect()
}

/// The first 10.`b`.x.0/24 that overlaps none of `used`.
pub(super) fn free_slash24(b: u8, used: &[(u32, u32)]) -> Option<Ipv4Addr> {
    (0..=255u8).map(|c| Ipv4Addr::new(10, b, c, 0)).find(|s| {
        let net = (u32::from(*s), 0xffff_ff00);
        used.iter().all(|u| !overlaps(net, *u))
    })
}

pub(super) fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    let mask = a.1 & b.1;
    a.0 & mask == b.0 & mask
}

/// Destinations of the host's IPv4 routes other than the default route.
pub(super) fn host_routes() -> Vec<(u32, u32)> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?.swap_bytes();
            (mask != 0).then_some((dest & mask, mask))
        })
        .collect()
}
