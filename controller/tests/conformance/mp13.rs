//! Multipart bodies and queue descriptions in Ryu's JSON form.
//!
//! Ryu names each request/reply class by multipart type (`OFPFlowStatsRequest`, ...), keeps the
//! multipart header's `type` and `flags` in it, and puts reply records under `body` (a list, or
//! a single object for DESC, AGGREGATE, GROUP_FEATURES and EXPERIMENTER replies; METER_FEATURES
//! is a one-element list in Ryu where our model has a single value).

use serde_json::{json, Value};
use tenet_controller::wire::of13::multipart::{
    ActionId, DescStats, FlowStats, FlowStatsRequest, GroupDesc, GroupStats, InstructionId, MeterConfig, MeterStats,
    OxmId, QueueProp, TableFeatureProp, TableFeatures,
};
use tenet_controller::wire::of13::oxm::{Oxm, OxmBytes, ONF_EXPERIMENTER};
use tenet_controller::wire::of13::{MultipartReply, MultipartRequest, PacketQueue};

use crate::common::{b64, class};
use crate::ryu13::{bucket, instructions, match_, meter_band, port};

/// ONF's flow monitor multipart type (`ONFMP_FLOW_MONITOR`), which Ryu decodes as
/// `ONFFlowMonitorStatsRequest`; its body is experimenter content, opaque in our model.
const ONFMP_FLOW_MONITOR: u32 = 1870;

fn emitted_len(emit: impl FnOnce(&mut Vec<u8>)) -> usize {
    let mut out = Vec::new();
    emit(&mut out);
    out.len()
}

fn flow_stats_request(name: &str, ty: u16, flags: u16, r: &FlowStatsRequest) -> Value {
    class(
        name,
        json!({
            "type": ty,
            "flags": flags,
            "table_id": r.table_id,
            "out_port": r.out_port,
            "out_group": r.out_group,
            "cookie": r.cookie,
            "cookie_mask": r.cookie_mask,
            "match": match_(&r.match_),
        }),
    )
}

pub fn request(flags: u16, body: &MultipartRequest) -> Value {
    let ty = body.multipart_type();
    let header_only = |name: &str| class(name, json!({"type": ty, "flags": flags}));
    match body {
        MultipartRequest::Desc => header_only("OFPDescStatsRequest"),
        MultipartRequest::Flow(r) => flow_stats_request("OFPFlowStatsRequest", ty, flags, r),
        MultipartRequest::Aggregate(r) => flow_stats_request("OFPAggregateStatsRequest", ty, flags, r),
        MultipartRequest::Table => header_only("OFPTableStatsRequest"),
        MultipartRequest::PortStats { port_no } => {
            class("OFPPortStatsRequest", json!({"type": ty, "flags": flags, "port_no": port_no}))
        }
        MultipartRequest::Queue { port_no, queue_id } => {
            class("OFPQueueStatsRequest", json!({"type": ty, "flags": flags, "port_no": port_no, "queue_id": queue_id}))
        }
        MultipartRequest::Group { group_id } => {
            class("OFPGroupStatsRequest", json!({"type": ty, "flags": flags, "group_id": group_id}))
        }
        MultipartRequest::GroupDesc => header_only("OFPGroupDescStatsRequest"),
        MultipartRequest::GroupFeatures => header_only("OFPGroupFeaturesStatsRequest"),
        MultipartRequest::Meter { meter_id } => {
            class("OFPMeterStatsRequest", json!({"type": ty, "flags": flags, "meter_id": meter_id}))
        }
        MultipartRequest::MeterConfig { meter_id } => {
            class("OFPMeterConfigStatsRequest", json!({"type": ty, "flags": flags, "meter_id": meter_id}))
        }
        MultipartRequest::MeterFeatures => header_only("OFPMeterFeaturesStatsRequest"),
        MultipartRequest::TableFeatures(tables) => class(
            "OFPTableFeaturesStatsRequest",
            json!({"type": ty, "flags": flags, "body": tables.iter().map(table_features).collect::<Vec<_>>()}),
        ),
        MultipartRequest::PortDesc => header_only("OFPPortDescStatsRequest"),
        // Experimenter content is opaque by design: for ONF's flow monitor only the envelope is
        // compared (common::project_experimenter drops Ryu's decoded monitor requests).
        MultipartRequest::Experimenter { experimenter, exp_type, .. }
            if *experimenter == ONF_EXPERIMENTER && *exp_type == ONFMP_FLOW_MONITOR =>
        {
            class(
                "ONFFlowMonitorStatsRequest",
                json!({"type": ty, "flags": flags, "experimenter": experimenter, "exp_type": exp_type}),
            )
        }
        MultipartRequest::Experimenter { experimenter, exp_type, data } => class(
            "OFPExperimenterStatsRequest",
            json!({"type": ty, "flags": flags, "experimenter": experimenter, "exp_type": exp_type, "data": b64(data)}),
        ),
    }
}

pub fn reply(flags: u16, body: &MultipartReply) -> Value {
    let ty = body.multipart_type();
    let with_body = |name: &str, body: Value| class(name, json!({"type": ty, "flags": flags, "body": body}));
    match body {
        MultipartReply::Desc(d) => with_body("OFPDescStatsReply", desc(d)),
        MultipartReply::Flow(v) => with_body("OFPFlowStatsReply", v.iter().map(flow_stats).collect()),
        MultipartReply::Aggregate(a) => with_body(
            "OFPAggregateStatsReply",
            class(
                "OFPAggregateStats",
                json!({"packet_count": a.packet_count, "byte_count": a.byte_count, "flow_count": a.flow_count}),
            ),
        ),
        MultipartReply::Table(v) => with_body(
            "OFPTableStatsReply",
            v.iter()
                .map(|t| {
                    class(
                        "OFPTableStats",
                        json!({
                            "table_id": t.table_id,
                            "active_count": t.active_count,
                            "lookup_count": t.lookup_count,
                            "matched_count": t.matched_count,
                        }),
                    )
                })
                .collect(),
        ),
        MultipartReply::PortStats(v) => with_body(
            "OFPPortStatsReply",
            v.iter()
                .map(|p| {
                    class(
                        "OFPPortStats",
                        json!({
                            "port_no": p.port_no,
                            "rx_packets": p.rx_packets,
                            "tx_packets": p.tx_packets,
                            "rx_bytes": p.rx_bytes,
                            "tx_bytes": p.tx_bytes,
                            "rx_dropped": p.rx_dropped,
                            "tx_dropped": p.tx_dropped,
                            "rx_errors": p.rx_errors,
                            "tx_errors": p.tx_errors,
                            "rx_frame_err": p.rx_frame_err,
                            "rx_over_err": p.rx_over_err,
                            "rx_crc_err": p.rx_crc_err,
                            "collisions": p.collisions,
                            "duration_sec": p.duration_sec,
                            "duration_nsec": p.duration_nsec,
                        }),
                    )
                })
                .collect(),
        ),
        MultipartReply::Queue(v) => with_body(
            "OFPQueueStatsReply",
            v.iter()
                .map(|q| {
                    class(
                        "OFPQueueStats",
                        json!({
                            "port_no": q.port_no,
                            "queue_id": q.queue_id,
                            "tx_bytes": q.tx_bytes,
                            "tx_packets": q.tx_packets,
                            "tx_errors": q.tx_errors,
                            "duration_sec": q.duration_sec,
                            "duration_nsec": q.duration_nsec,
                        }),
                    )
                })
                .collect(),
        ),
        MultipartReply::Group(v) => with_body("OFPGroupStatsReply", v.iter().map(group_stats).collect()),
        MultipartReply::GroupDesc(v) => with_body("OFPGroupDescStatsReply", v.iter().map(group_desc).collect()),
        MultipartReply::GroupFeatures(g) => with_body(
            "OFPGroupFeaturesStatsReply",
            class(
                "OFPGroupFeaturesStats",
                json!({
                    "types": g.types,
                    "capabilities": g.capabilities,
                    "max_groups": g.max_groups,
                    "actions": g.actions,
                }),
            ),
        ),
        MultipartReply::Meter(v) => with_body("OFPMeterStatsReply", v.iter().map(meter_stats).collect()),
        MultipartReply::MeterConfig(v) => with_body("OFPMeterConfigStatsReply", v.iter().map(meter_config).collect()),
        MultipartReply::MeterFeatures(m) => with_body(
            "OFPMeterFeaturesStatsReply",
            json!([class(
                "OFPMeterFeaturesStats",
                json!({
                    "max_meter": m.max_meter,
                    "band_types": m.band_types,
                    "capabilities": m.capabilities,
                    "max_bands": m.max_bands,
                    "max_color": m.max_color,
                }),
            )]),
        ),
        MultipartReply::TableFeatures(v) => {
            with_body("OFPTableFeaturesStatsReply", v.iter().map(table_features).collect())
        }
        MultipartReply::PortDesc(ports) => with_body("OFPPortDescStatsReply", ports.iter().map(port).collect()),
        MultipartReply::Experimenter { experimenter, exp_type, data } => with_body(
            "OFPExperimenterStatsReply",
            class(
                "OFPExperimenterMultipart",
                json!({"experimenter": experimenter, "exp_type": exp_type, "data": b64(data)}),
            ),
        ),
    }
}

fn desc(d: &DescStats) -> Value {
    class(
        "OFPDescStats",
        json!({
            "mfr_desc": d.mfr_desc(),
            "hw_desc": d.hw_desc(),
            "sw_desc": d.sw_desc(),
            "serial_num": d.serial_num(),
            "dp_desc": d.dp_desc(),
        }),
    )
}

fn flow_stats(f: &FlowStats) -> Value {
    class(
        "OFPFlowStats",
        json!({
            "length": emitted_len(|o| f.emit(o)),
            "table_id": f.table_id,
            "duration_sec": f.duration_sec,
            "duration_nsec": f.duration_nsec,
            "priority": f.priority,
            "idle_timeout": f.idle_timeout,
            "hard_timeout": f.hard_timeout,
            "flags": f.flags,
            "cookie": f.cookie,
            "packet_count": f.packet_count,
            "byte_count": f.byte_count,
            "match": match_(&f.match_),
            "instructions": instructions(&f.instructions),
        }),
    )
}

fn group_stats(g: &GroupStats) -> Value {
    class(
        "OFPGroupStats",
        json!({
            "length": emitted_len(|o| g.emit(o)),
            "group_id": g.group_id,
            "ref_count": g.ref_count,
            "packet_count": g.packet_count,
            "byte_count": g.byte_count,
            "duration_sec": g.duration_sec,
            "duration_nsec": g.duration_nsec,
            "bucket_stats": g.bucket_stats.iter().map(|c| class(
                "OFPBucketCounter",
                json!({"packet_count": c.packet_count, "byte_count": c.byte_count}),
            )).collect::<Vec<_>>(),
        }),
    )
}

fn group_desc(g: &GroupDesc) -> Value {
    class(
        "OFPGroupDescStats",
        json!({
            "length": emitted_len(|o| g.emit(o)),
            "type": g.group_type,
            "group_id": g.group_id,
            "buckets": g.buckets.iter().map(bucket).collect::<Vec<_>>(),
        }),
    )
}

fn meter_stats(m: &MeterStats) -> Value {
    class(
        "OFPMeterStats",
        json!({
            "meter_id": m.meter_id,
            "len": emitted_len(|o| m.emit(o)),
            "flow_count": m.flow_count,
            "packet_in_count": m.packet_in_count,
            "byte_in_count": m.byte_in_count,
            "duration_sec": m.duration_sec,
            "duration_nsec": m.duration_nsec,
            "band_stats": m.band_stats.iter().map(|b| class(
                "OFPMeterBandStats",
                json!({"packet_band_count": b.packet_band_count, "byte_band_count": b.byte_band_count}),
            )).collect::<Vec<_>>(),
        }),
    )
}

fn meter_config(m: &MeterConfig) -> Value {
    class(
        "OFPMeterConfigStats",
        json!({
            "length": emitted_len(|o| m.emit(o)),
            "flags": m.flags,
            "meter_id": m.meter_id,
            "bands": m.bands.iter().map(meter_band).collect::<Vec<_>>(),
        }),
    )
}

fn table_features(t: &TableFeatures) -> Value {
    class(
        "OFPTableFeaturesStats",
        json!({
            "length": emitted_len(|o| t.emit(o)),
            "table_id": t.table_id,
            "name": t.name(),
            "metadata_match": t.metadata_match,
            "metadata_write": t.metadata_write,
            "config": t.config,
            "max_entries": t.max_entries,
            "properties": t.properties.iter().map(table_feature_prop).collect::<Vec<_>>(),
        }),
    )
}

/// Ryu shows experimenter property data as a list of u32 words.
fn u32_words(data: &[u8]) -> Value {
    let words = data.chunks_exact(4);
    if !words.remainder().is_empty() {
        return b64(data);
    }
    Value::Array(words.map(|c| json!(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect())
}

fn table_feature_prop(p: &TableFeatureProp) -> Value {
    // `length` excludes the padding to 8 that emit appends.
    let padded = emitted_len(|o| p.emit(o));
    let mut bytes = Vec::new();
    p.emit(&mut bytes);
    let length = if padded >= 4 { usize::from(u16::from_be_bytes([bytes[2], bytes[3]])) } else { padded };
    let ty = p.prop_type();
    match p {
        TableFeatureProp::Instructions { instruction_ids, .. } => class(
            "OFPTableFeaturePropInstructions",
            json!({"type": ty, "length": length, "instruction_ids": instruction_ids.iter().map(instruction_id).collect::<Vec<_>>()}),
        ),
        TableFeatureProp::NextTables { table_ids, .. } => {
            class("OFPTableFeaturePropNextTables", json!({"type": ty, "length": length, "table_ids": table_ids}))
        }
        TableFeatureProp::Actions { action_ids, .. } => class(
            "OFPTableFeaturePropActions",
            json!({"type": ty, "length": length, "action_ids": action_ids.iter().map(action_id).collect::<Vec<_>>()}),
        ),
        TableFeatureProp::Oxm { oxm_ids, .. } => class(
            "OFPTableFeaturePropOxm",
            json!({"type": ty, "length": length, "oxm_ids": oxm_ids.iter().map(oxm_id).collect::<Vec<_>>()}),
        ),
        TableFeatureProp::Experimenter { experimenter, exp_type, data, .. } => class(
            "OFPTableFeaturePropExperimenter",
            json!({"type": ty, "length": length, "experimenter": experimenter, "exp_type": exp_type, "data": u32_words(data)}),
        ),
        TableFeatureProp::Unknown { data, .. } => {
            class("OFPTableFeaturePropUnknown", json!({"type": ty, "length": length, "data": b64(data)}))
        }
    }
}

fn instruction_id(i: &InstructionId) -> Value {
    class("OFPInstructionId", json!({"type": i.instruction_type, "len": 4 + i.data.len()}))
}

fn action_id(a: &ActionId) -> Value {
    class("OFPActionId", json!({"type": a.action_type, "len": 4 + a.data.len()}))
}

/// `OFPOxmId {type: field name, hasmask: 0/1, length}`, named like `Oxm::info()` names fields.
fn oxm_id(o: &OxmId) -> Value {
    let as_oxm =
        Oxm { class: o.class, field: o.field, experimenter: o.experimenter, value: OxmBytes::new(&[]), mask: None };
    let name = o
        .info()
        .or_else(|| as_oxm.info())
        .map_or_else(|| format!("unknown_oxm_class{:#06x}_field{}", o.class, o.field), |i| i.name.to_owned());
    class("OFPOxmId", json!({"type": name, "hasmask": u8::from(o.hasmask), "length": o.length}))
}

pub fn packet_queue(q: &PacketQueue) -> Value {
    class(
        "OFPPacketQueue",
        json!({
            "queue_id": q.queue_id,
            "port": q.port,
            "len": emitted_len(|o| q.emit(o)),
            "properties": q.properties.iter().map(queue_prop).collect::<Vec<_>>(),
        }),
    )
}

fn queue_prop(p: &QueueProp) -> Value {
    let len = emitted_len(|o| p.emit(o));
    let property = p.property();
    match p {
        QueueProp::MinRate { rate } => {
            class("OFPQueuePropMinRate", json!({"property": property, "len": len, "rate": rate}))
        }
        QueueProp::MaxRate { rate } => {
            class("OFPQueuePropMaxRate", json!({"property": property, "len": len, "rate": rate}))
        }
        // Ryu shows this property's data as a list of byte values.
        QueueProp::Experimenter { experimenter, data } => class(
            "OFPQueuePropExperimenter",
            json!({"property": property, "len": len, "experimenter": experimenter, "data": data}),
        ),
        QueueProp::Unknown { data, .. } => {
            class("OFPQueueProp", json!({"property": property, "len": len, "data": b64(data)}))
        }
    }
}
