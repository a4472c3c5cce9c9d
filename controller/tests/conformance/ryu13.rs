//! Our OpenFlow 1.3 values in Ryu's JSON form (`ryu.ofproto.ofproto_v1_3_parser` to_jsondict()).
//!
//! Lengths Ryu shows but our model computes on emit (`len`, `length`, `actions_len`) are
//! computed here by emitting the value and measuring it.

use serde_json::{json, Value};
use tenet_controller::wire::of13::action::{self, Action, Instruction};
use tenet_controller::wire::of13::oxm::{Match, Oxm, ValueKind};
use tenet_controller::wire::of13::{Bucket, HelloElem, Message, MeterBand, Port};

use crate::common::{b64, bits_of, class, ipv4, ipv6, mac, uint};
use crate::mp13;

/// The whole message, `{"OFPClass": {...}}`.
pub fn message(msg: &Message) -> Value {
    match msg {
        Message::Hello(elems) => {
            class("OFPHello", json!({"elements": elems.iter().map(hello_elem).collect::<Vec<_>>()}))
        }
        Message::Error { err_type, code, data } => {
            class("OFPErrorMsg", json!({"type": err_type, "code": code, "data": b64(data)}))
        }
        Message::ErrorExperimenter { exp_type, experimenter, data } => class(
            "OFPErrorMsg",
            json!({"type": 0xffff, "code": null, "exp_type": exp_type, "experimenter": experimenter, "data": b64(data)}),
        ),
        Message::EchoRequest(d) => class("OFPEchoRequest", json!({"data": b64(d)})),
        Message::EchoReply(d) => class("OFPEchoReply", json!({"data": b64(d)})),
        Message::Experimenter { experimenter, exp_type, data } => {
            class("OFPExperimenter", json!({"experimenter": experimenter, "exp_type": exp_type, "data": b64(data)}))
        }
        Message::FeaturesRequest => class("OFPFeaturesRequest", json!({})),
        // Ryu's OFPSwitchFeatures does not show `reserved`.
        Message::FeaturesReply(f) => class(
            "OFPSwitchFeatures",
            json!({
                "datapath_id": f.datapath_id,
                "n_buffers": f.n_buffers,
                "n_tables": f.n_tables,
                "auxiliary_id": f.auxiliary_id,
                "capabilities": f.capabilities,
            }),
        ),
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
                "reason": p.reason,
                "table_id": p.table_id,
                "cookie": p.cookie,
                "match": match_(&p.match_),
                "data": b64(&p.data),
            }),
        ),
        Message::FlowRemoved(f) => class(
            "OFPFlowRemoved",
            json!({
                "cookie": f.cookie,
                "priority": f.priority,
                "reason": f.reason,
                "table_id": f.table_id,
                "duration_sec": f.duration_sec,
                "duration_nsec": f.duration_nsec,
                "idle_timeout": f.idle_timeout,
                "hard_timeout": f.hard_timeout,
                "packet_count": f.packet_count,
                "byte_count": f.byte_count,
                "match": match_(&f.match_),
            }),
        ),
        Message::PortStatus(p) => class("OFPPortStatus", json!({"reason": p.reason, "desc": port(&p.desc)})),
        Message::PacketOut(p) => {
            let mut actions_bytes = Vec::new();
            action::emit_actions(&p.actions, &mut actions_bytes);
            class(
                "OFPPacketOut",
                json!({
                    "buffer_id": p.buffer_id,
                    "in_port": p.in_port,
                    "actions_len": actions_bytes.len(),
                    "actions": actions(&p.actions),
                    "data": b64(&p.data),
                }),
            )
        }
        Message::FlowMod(f) => class(
            "OFPFlowMod",
            json!({
                "cookie": f.cookie,
                "cookie_mask": f.cookie_mask,
                "table_id": f.table_id,
                "command": f.command,
                "idle_timeout": f.idle_timeout,
                "hard_timeout": f.hard_timeout,
                "priority": f.priority,
                "buffer_id": f.buffer_id,
                "out_port": f.out_port,
                "out_group": f.out_group,
                "flags": f.flags,
                "match": match_(&f.match_),
                "instructions": instructions(&f.instructions),
            }),
        ),
        Message::GroupMod(g) => class(
            "OFPGroupMod",
            json!({
                "command": g.command,
                "type": g.group_type,
                "group_id": g.group_id,
                "buckets": g.buckets.iter().map(bucket).collect::<Vec<_>>(),
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
        Message::TableMod { table_id, config } => class("OFPTableMod", json!({"table_id": table_id, "config": config})),
        Message::MultipartRequest { flags, body } => mp13::request(*flags, body),
        Message::MultipartReply { flags, body } => mp13::reply(*flags, body),
        Message::BarrierRequest => class("OFPBarrierRequest", json!({})),
        Message::BarrierReply => class("OFPBarrierReply", json!({})),
        Message::QueueGetConfigRequest { port } => class("OFPQueueGetConfigRequest", json!({"port": port})),
        Message::QueueGetConfigReply { port, queues } => class(
            "OFPQueueGetConfigReply",
            json!({"port": port, "queues": queues.iter().map(mp13::packet_queue).collect::<Vec<_>>()}),
        ),
        Message::RoleRequest { role, generation_id } => {
            class("OFPRoleRequest", json!({"role": role, "generation_id": generation_id}))
        }
        Message::RoleReply { role, generation_id } => {
            class("OFPRoleReply", json!({"role": role, "generation_id": generation_id}))
        }
        Message::GetAsyncRequest => class("OFPGetAsyncRequest", json!({})),
        Message::GetAsyncReply(a) | Message::SetAsync(a) => {
            let name = if matches!(msg, Message::SetAsync(_)) { "OFPSetAsync" } else { "OFPGetAsyncReply" };
            class(
                name,
                json!({
                    "packet_in_mask": a.packet_in_mask,
                    "port_status_mask": a.port_status_mask,
                    "flow_removed_mask": a.flow_removed_mask,
                }),
            )
        }
        Message::MeterMod(m) => class(
            "OFPMeterMod",
            json!({
                "command": m.command,
                "flags": m.flags,
                "meter_id": m.meter_id,
                "bands": m.bands.iter().map(meter_band).collect::<Vec<_>>(),
            }),
        ),
    }
}

fn hello_elem(e: &HelloElem) -> Value {
    match e {
        HelloElem::VersionBitmap(words) => class(
            "OFPHelloElemVersionBitmap",
            json!({"type": 1, "length": 4 + 4 * words.len(), "versions": bits_of(words)}),
        ),
        HelloElem::Unknown { elem_type, data } => {
            class("OFPHelloElem", json!({"type": elem_type, "length": 4 + data.len(), "data": b64(data)}))
        }
    }
}

/// `OFPMatch` with its unpadded `length`.
pub fn match_(m: &Match) -> Value {
    class(
        "OFPMatch",
        json!({"type": 1, "length": m.wire_len(), "oxm_fields": m.fields.iter().map(oxm).collect::<Vec<_>>()}),
    )
}

/// One value in the form its field's kind prints as.
fn oxm_value(kind: ValueKind, bytes: &[u8]) -> Value {
    let s = match kind {
        ValueKind::Int => None,
        ValueKind::Mac if bytes.len() == 6 => Some(mac(bytes)),
        ValueKind::Ipv4 => ipv4(bytes),
        ValueKind::Ipv6 => ipv6(bytes),
        ValueKind::Mac => None,
    };
    s.map_or_else(|| uint(bytes), Value::String)
}

/// `OXMTlv {field, mask, value}`, named and formatted by `Oxm::info()`.
pub fn oxm(o: &Oxm) -> Value {
    let (name, kind) = match o.info() {
        Some(i) => (i.name.to_owned(), i.kind),
        None => (format!("unknown_oxm_class{:#06x}_field{}", o.class, o.field), ValueKind::Int),
    };
    let mask = o.mask.as_ref().map_or(Value::Null, |m| oxm_value(kind, m.as_slice()));
    class("OXMTlv", json!({"field": name, "value": oxm_value(kind, o.payload()), "mask": mask}))
}

pub fn actions(list: &[Action]) -> Vec<Value> {
    list.iter().map(action).collect()
}

/// Ryu's class for a Nicira action subtype (`ryu.ofproto.nicira_ext`), for those the corpus uses
/// and a few common others; the rest are `NXActionUnknown`.
fn nx_class(subtype: u16) -> &'static str {
    match subtype {
        1 => "NXActionResubmit",
        2 => "NXActionSetTunnel",
        6 => "NXActionRegMove",
        7 => "NXActionRegLoad",
        8 => "NXActionNote",
        9 => "NXActionSetTunnel64",
        14 => "NXActionResubmitTable",
        15 => "NXActionOutputReg",
        16 => "NXActionLearn",
        17 => "NXActionExit",
        18 => "NXActionDecTtl",
        19 => "NXActionFinTimeout",
        20 => "NXActionController",
        21 => "NXActionDecTtlCntIds",
        23 => "NXActionPushMpls",
        24 => "NXActionPopMpls",
        25 => "NXActionSetMplsTtl",
        26 => "NXActionDecMplsTtl",
        27 => "NXActionStackPush",
        28 => "NXActionStackPop",
        29 => "NXActionSample",
        30 => "NXActionSetMplsLabel",
        31 => "NXActionSetMplsTc",
        32 => "NXActionOutputReg2",
        33 => "NXActionRegLoad2",
        34 => "NXActionConjunction",
        35 => "NXActionCT",
        36 => "NXActionNAT",
        37 => "NXActionController2",
        38 => "NXActionSample2",
        39 => "NXActionOutputTrunc",
        42 => "NXActionDecNshTtl",
        43 => "NXActionCTClear",
        _ => "NXActionUnknown",
    }
}

pub fn action(a: &Action) -> Value {
    let mut bytes = Vec::new();
    a.emit(&mut bytes);
    let len = bytes.len();
    let ty = a.action_type();
    let plain = |name: &str| class(name, json!({"type": ty, "len": len}));
    match a {
        Action::Output { port, max_len } => {
            class("OFPActionOutput", json!({"type": ty, "len": len, "port": port, "max_len": max_len}))
        }
        Action::CopyTtlOut => plain("OFPActionCopyTtlOut"),
        Action::CopyTtlIn => plain("OFPActionCopyTtlIn"),
        Action::SetMplsTtl(t) => class("OFPActionSetMplsTtl", json!({"type": ty, "len": len, "mpls_ttl": t})),
        Action::DecMplsTtl => plain("OFPActionDecMplsTtl"),
        Action::PushVlan(e) => class("OFPActionPushVlan", json!({"type": ty, "len": len, "ethertype": e})),
        Action::PopVlan => plain("OFPActionPopVlan"),
        Action::PushMpls(e) => class("OFPActionPushMpls", json!({"type": ty, "len": len, "ethertype": e})),
        Action::PopMpls(e) => class("OFPActionPopMpls", json!({"type": ty, "len": len, "ethertype": e})),
        Action::SetQueue(q) => class("OFPActionSetQueue", json!({"type": ty, "len": len, "queue_id": q})),
        Action::Group(g) => class("OFPActionGroup", json!({"type": ty, "len": len, "group_id": g})),
        Action::SetNwTtl(t) => class("OFPActionSetNwTtl", json!({"type": ty, "len": len, "nw_ttl": t})),
        Action::DecNwTtl => plain("OFPActionDecNwTtl"),
        Action::SetField(o) => class("OFPActionSetField", json!({"type": ty, "len": len, "field": oxm(o)})),
        Action::PushPbb(e) => class("OFPActionPushPbb", json!({"type": ty, "len": len, "ethertype": e})),
        Action::PopPbb => plain("OFPActionPopPbb"),
        // Experimenter content is opaque by design: only the envelope is compared (see
        // common::project_experimenter).
        Action::Nicira { subtype, .. } => class(
            nx_class(*subtype),
            json!({"type": ty, "len": len, "experimenter": action::NX_EXPERIMENTER, "subtype": subtype}),
        ),
        Action::Experimenter { experimenter, .. } => {
            class("OFPActionExperimenterUnknown", json!({"type": ty, "len": len, "experimenter": experimenter}))
        }
    }
}

pub fn instructions(list: &[Instruction]) -> Vec<Value> {
    list.iter().map(instruction).collect()
}

pub fn instruction(i: &Instruction) -> Value {
    let mut bytes = Vec::new();
    i.emit(&mut bytes);
    let len = bytes.len();
    let ty = i.instruction_type();
    match i {
        Instruction::GotoTable(t) => class("OFPInstructionGotoTable", json!({"type": ty, "len": len, "table_id": t})),
        Instruction::WriteMetadata { metadata, mask } => class(
            "OFPInstructionWriteMetadata",
            json!({"type": ty, "len": len, "metadata": metadata, "metadata_mask": mask}),
        ),
        Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
            class("OFPInstructionActions", json!({"type": ty, "len": len, "actions": actions(a)}))
        }
        Instruction::ClearActions => class("OFPInstructionActions", json!({"type": ty, "len": len, "actions": []})),
        Instruction::Meter(m) => class("OFPInstructionMeter", json!({"type": ty, "len": len, "meter_id": m})),
        Instruction::Experimenter { experimenter, .. } => {
            class("OFPInstructionExperimenter", json!({"type": ty, "len": len, "experimenter": experimenter}))
        }
    }
}

/// `OFPPort`, the name as UTF-8 text up to the first NUL.
pub fn port(p: &Port) -> Value {
    class(
        "OFPPort",
        json!({
            "port_no": p.port_no,
            "hw_addr": mac(&p.hw_addr),
            "name": p.name(),
            "config": p.config,
            "state": p.state,
            "curr": p.curr,
            "advertised": p.advertised,
            "supported": p.supported,
            "peer": p.peer,
            "curr_speed": p.curr_speed,
            "max_speed": p.max_speed,
        }),
    )
}

pub fn bucket(b: &Bucket) -> Value {
    let mut bytes = Vec::new();
    b.emit(&mut bytes);
    class(
        "OFPBucket",
        json!({
            "len": bytes.len(),
            "weight": b.weight,
            "watch_port": b.watch_port,
            "watch_group": b.watch_group,
            "actions": actions(&b.actions),
        }),
    )
}

pub fn meter_band(b: &MeterBand) -> Value {
    let mut bytes = Vec::new();
    b.emit(&mut bytes);
    let len = bytes.len();
    match b {
        MeterBand::Drop { rate, burst_size } => {
            class("OFPMeterBandDrop", json!({"type": 1, "len": len, "rate": rate, "burst_size": burst_size}))
        }
        MeterBand::DscpRemark { rate, burst_size, prec_level } => class(
            "OFPMeterBandDscpRemark",
            json!({"type": 2, "len": len, "rate": rate, "burst_size": burst_size, "prec_level": prec_level}),
        ),
        // Ryu shows no experimenter payload for this band; ours stays opaque.
        MeterBand::Experimenter { rate, burst_size, experimenter, .. } => class(
            "OFPMeterBandExperimenter",
            json!({"type": 0xffff, "len": len, "rate": rate, "burst_size": burst_size, "experimenter": experimenter}),
        ),
    }
}
