//! Our OpenFlow 1.0 values in Ryu's JSON form (`ryu.ofproto.ofproto_v1_0_parser` to_jsondict()).
//!
//! Ryu's 1.0 classes differ from its 1.3 ones: actions show no `type`/`len`, the packet-out
//! has no `actions_len`, the match is the fixed `ofp_match` with addresses as text, features
//! replies list ports as an object keyed by port number, and Nicira actions show only
//! `vendor` and `subtype` beside their (opaque to us) content.

use serde_json::{json, Map, Value};
use tenet_controller::wire::of10::{
    Action, FlowStats, Match, Message, PhyPort, StatsReply, StatsRequest, NX_VENDOR_ID,
};
use tenet_controller::wire::of13::port::str_of;

use crate::common::{b64, class, ipv4, mac};

pub fn emit(msg: &Message, xid: u32) -> Vec<u8> {
    let mut out = Vec::new();
    msg.emit(xid, &mut out).expect("message fits in 64 KiB");
    out
}

pub fn message(msg: &Message) -> Value {
    match msg {
        Message::Hello(data) => class("OFPHello", json!({"data": b64(data)})),
        Message::Error { err_type, code, data } => {
            class("OFPErrorMsg", json!({"type": err_type, "code": code, "data": b64(data)}))
        }
        Message::EchoRequest(d) => class("OFPEchoRequest", json!({"data": b64(d)})),
        Message::EchoReply(d) => class("OFPEchoReply", json!({"data": b64(d)})),
        Message::Vendor { vendor, data } => class("OFPVendor", json!({"vendor": vendor, "data": b64(data)})),
        Message::FeaturesRequest => class("OFPFeaturesRequest", json!({})),
        Message::FeaturesReply(f) => {
            let ports: Map<String, Value> = f.ports.iter().map(|p| (p.port_no.to_string(), phy_port(p))).collect();
            class(
                "OFPSwitchFeatures",
                json!({
                    "datapath_id": f.datapath_id,
                    "n_buffers": f.n_buffers,
                    "n_tables": f.n_tables,
                    "capabilities": f.capabilities,
                    "actions": f.actions,
                    "ports": ports,
                }),
            )
        }
        Message::GetConfigRequest => class("OFPGetConfigRequest", json!({})),
        Message::GetConfigReply { flags, miss_send_len } => {
            class("OFPGetConfigReply", json!({"flags": flags, "miss_send_len": miss_send_len}))
        }
        Message::SetConfig { flags, miss_send_len } => {
            class("OFPSetConfig", json!({"flags": flags, "miss_send_len": miss_send_len}))
        }
        Message::PacketIn(p) => class(
            "OFPPacketIn",
            json!({
                "buffer_id": p.buffer_id,
                "total_len": p.total_len,
                "in_port": p.in_port,
                "reason": p.reason,
                "data": b64(&p.data),
            }),
        ),
        Message::FlowRemoved(f) => class(
            "OFPFlowRemoved",
            json!({
                "match": match_(&f.match_),
                "cookie": f.cookie,
                "priority": f.priority,
                "reason": f.reason,
                "duration_sec": f.duration_sec,
                "duration_nsec": f.duration_nsec,
                "idle_timeout": f.idle_timeout,
                "packet_count": f.packet_count,
                "byte_count": f.byte_count,
            }),
        ),
        Message::PortStatus(p) => class("OFPPortStatus", json!({"reason": p.reason, "desc": phy_port(&p.desc)})),
        Message::PacketOut(p) => class(
            "OFPPacketOut",
            json!({
                "buffer_id": p.buffer_id,
                "in_port": p.in_port,
                "actions": actions(&p.actions),
                "data": b64(&p.data),
            }),
        ),
        Message::FlowMod(f) => class(
            "OFPFlowMod",
            json!({
                "match": match_(&f.match_),
                "cookie": f.cookie,
                "command": f.command,
                "idle_timeout": f.idle_timeout,
                "hard_timeout": f.hard_timeout,
                "priority": f.priority,
                "buffer_id": f.buffer_id,
                "out_port": f.out_port,
                "flags": f.flags,
                "actions": actions(&f.actions),
            }),
        ),
        Message::PortMod(p) => class(
            "OFPPortMod",
            json!({
                "port_no": p.port_no,
                "hw_addr": mac(&p.hw_addr),
                "config": p.config,
                "mask": p.mask,
                "advertise": p.advertise,
            }),
        ),
        Message::StatsRequest { flags, body } => stats_request(*flags, body),
        Message::StatsReply { flags, body } => stats_reply(*flags, body),
        Message::BarrierRequest => class("OFPBarrierRequest", json!({})),
        Message::BarrierReply => class("OFPBarrierReply", json!({})),
        Message::QueueGetConfigRequest { port } => class("OFPQueueGetConfigRequest", json!({"port": port})),
        // Queue descriptions are kept opaque in our 1.0 model.
        Message::QueueGetConfigReply { port, queues } => {
            class("OFPQueueGetConfigReply", json!({"port": port, "queues": b64(queues)}))
        }
    }
}

/// The fixed 1.0 match, every field shown (wildcarded or not), addresses as text.
pub fn match_(m: &Match) -> Value {
    class(
        "OFPMatch",
        json!({
            "wildcards": m.wildcards,
            "in_port": m.in_port,
            "dl_src": mac(&m.dl_src),
            "dl_dst": mac(&m.dl_dst),
            "dl_vlan": m.dl_vlan,
            "dl_vlan_pcp": m.dl_vlan_pcp,
            "dl_type": m.dl_type,
            "nw_tos": m.nw_tos,
            "nw_proto": m.nw_proto,
            "nw_src": ipv4(&m.nw_src.to_be_bytes()),
            "nw_dst": ipv4(&m.nw_dst.to_be_bytes()),
            "tp_src": m.tp_src,
            "tp_dst": m.tp_dst,
        }),
    )
}

pub fn phy_port(p: &PhyPort) -> Value {
    class(
        "OFPPhyPort",
        json!({
            "port_no": p.port_no,
            "hw_addr": mac(&p.hw_addr),
            "name": p.name_str(),
            "config": p.config,
            "state": p.state,
            "curr": p.curr,
            "advertised": p.advertised,
            "supported": p.supported,
            "peer": p.peer,
        }),
    )
}

fn actions(list: &[Action]) -> Vec<Value> {
    list.iter().map(action).collect()
}

/// Ryu's class for a Nicira action subtype in OpenFlow 1.0 (`ryu.ofproto.nicira_ext`).
fn nx_class(subtype: u16) -> &'static str {
    match subtype {
        1 => "NXActionResubmit",
        2 => "NXActionSetTunnel",
        6 => "NXActionRegMove",
        7 => "NXActionRegLoad",
        8 => "NXActionNote",
        14 => "NXActionResubmitTable",
        16 => "NXActionLearn",
        18 => "NXActionDecTtl",
        23 => "NXActionPushMpls",
        24 => "NXActionPopMpls",
        25 => "NXActionSetMplsTtl",
        26 => "NXActionDecMplsTtl",
        30 => "NXActionSetMplsLabel",
        31 => "NXActionSetMplsTc",
        _ => "NXActionUnknown",
    }
}

fn action(a: &Action) -> Value {
    match a {
        Action::Output { port, max_len } => class("OFPActionOutput", json!({"port": port, "max_len": max_len})),
        Action::SetVlanVid { vlan_vid } => class("OFPActionVlanVid", json!({"vlan_vid": vlan_vid})),
        Action::SetVlanPcp { vlan_pcp } => class("OFPActionVlanPcp", json!({"vlan_pcp": vlan_pcp})),
        Action::StripVlan => class("OFPActionStripVlan", json!({})),
        Action::SetDlSrc { dl_addr } => class("OFPActionSetDlSrc", json!({"dl_addr": mac(dl_addr)})),
        Action::SetDlDst { dl_addr } => class("OFPActionSetDlDst", json!({"dl_addr": mac(dl_addr)})),
        Action::SetNwSrc { nw_addr } => class("OFPActionSetNwSrc", json!({"nw_addr": nw_addr})),
        Action::SetNwDst { nw_addr } => class("OFPActionSetNwDst", json!({"nw_addr": nw_addr})),
        Action::SetNwTos { tos } => class("OFPActionSetNwTos", json!({"tos": tos})),
        Action::SetTpSrc { tp } => class("OFPActionSetTpSrc", json!({"tp": tp})),
        Action::SetTpDst { tp } => class("OFPActionSetTpDst", json!({"tp": tp})),
        Action::Enqueue { port, queue_id } => class("OFPActionEnqueue", json!({"port": port, "queue_id": queue_id})),
        // Experimenter content is opaque by design: only vendor and subtype are compared
        // (common::project_experimenter drops the rest of Ryu's fields).
        Action::Nicira { subtype, .. } => {
            class(nx_class(*subtype), json!({"vendor": NX_VENDOR_ID, "subtype": subtype}))
        }
        Action::Vendor { vendor, .. } => class("OFPActionVendor", json!({"vendor": vendor})),
    }
}

fn stats_request(flags: u16, body: &StatsRequest) -> Value {
    let ty = body.stats_type();
    match body {
        StatsRequest::Desc => class("OFPDescStatsRequest", json!({"type": ty, "flags": flags})),
        StatsRequest::Flow(f) => class(
            "OFPFlowStatsRequest",
            json!({"type": ty, "flags": flags, "match": match_(&f.match_), "table_id": f.table_id, "out_port": f.out_port}),
        ),
        StatsRequest::Other { body, .. } => {
            class("OFPStatsRequest", json!({"type": ty, "flags": flags, "body": b64(body)}))
        }
    }
}

fn stats_reply(flags: u16, body: &StatsReply) -> Value {
    let ty = body.stats_type();
    match body {
        StatsReply::Desc(d) => class(
            "OFPDescStatsReply",
            json!({"type": ty, "flags": flags, "body": class("OFPDescStats", json!({
                "mfr_desc": str_of(&d.mfr_desc),
                "hw_desc": str_of(&d.hw_desc),
                "sw_desc": str_of(&d.sw_desc),
                "serial_num": str_of(&d.serial_num),
                "dp_desc": str_of(&d.dp_desc),
            }))}),
        ),
        StatsReply::Flow(v) => class(
            "OFPFlowStatsReply",
            json!({"type": ty, "flags": flags, "body": v.iter().map(flow_stats).collect::<Vec<_>>()}),
        ),
        StatsReply::Other { body, .. } => {
            class("OFPStatsReply", json!({"type": ty, "flags": flags, "body": b64(body)}))
        }
    }
}

fn flow_stats(f: &FlowStats) -> Value {
    let mut actions_bytes = Vec::new();
    tenet_controller::wire::of10::action::emit_actions(&f.actions, &mut actions_bytes);
    class(
        "OFPFlowStats",
        json!({
            "length": 88 + actions_bytes.len(),
            "table_id": f.table_id,
            "match": match_(&f.match_),
            "duration_sec": f.duration_sec,
            "duration_nsec": f.duration_nsec,
            "priority": f.priority,
            "idle_timeout": f.idle_timeout,
            "hard_timeout": f.hard_timeout,
            "cookie": f.cookie,
            "packet_count": f.packet_count,
            "byte_count": f.byte_count,
            "actions": actions(&f.actions),
        }),
    )
}
