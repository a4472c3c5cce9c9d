//! The reconciler: what a switch holds (flow and group stats) against what it should
//! hold (the compiler's output), and the OpenFlow messages that close the gap and
//! nothing more. Flows are named by table, priority and match; a flow whose cookie or
//! instructions differ is replaced in place with an ADD (atomic in OpenFlow: packets
//! see the old or the new flow, never neither). Order: groups added or changed, flows
//! added or replaced, flows deleted, groups deleted; the caller closes with a barrier.

use std::time::Duration;

use crate::session::{RequestError, SwitchHandle};
use crate::wire::of13::action::port_no;
use crate::wire::of13::group_meter::group_command;
use crate::wire::of13::multipart::{FlowStats, FlowStatsRequest, GroupDesc, MultipartReply, MultipartRequest};
use crate::wire::of13::{self, Action, Bucket, FlowMod, GroupMod, Instruction};

use super::flows::{FlowBody, FlowKey, Group, SwitchFlows};

/// What one reconciliation sends.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    pub messages: Vec<of13::Message>,
    pub flows_added: usize,
    pub flows_deleted: usize,
    pub groups_changed: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// The form both sides are compared in: an output's `max_len` only matters for the controller.
fn normalize_actions(actions: &mut [Action]) {
    for a in actions {
        if let Action::Output { port, max_len } = a {
            if *port != port_no::CONTROLLER {
                *max_len = 0;
            }
        }
    }
}

fn normalize_instructions(mut instructions: Vec<Instruction>) -> Vec<Instruction> {
    for i in &mut instructions {
        if let Instruction::ApplyActions(a) | Instruction::WriteActions(a) = i {
            normalize_actions(a);
        }
    }
    instructions
}

fn normalize_bucket(mut b: Bucket, group_type: u8) -> Bucket {
    normalize_actions(&mut b.actions);
    if group_type != of13::group_meter::group_type::FAST_FAILOVER {
        b.watch_port = port_no::ANY;
        b.watch_group = port_no::ANY;
    }
    if group_type != of13::group_meter::group_type::SELECT {
        b.weight = 0;
    }
    b
}

/// A switch's flows and groups as read back, in the compiler's form.
pub fn installed(flows: Vec<FlowStats>, groups: Vec<GroupDesc>) -> SwitchFlows {
    let mut out = SwitchFlows::default();
    for f in flows {
        out.flows.insert(
            FlowKey::new(f.table_id, f.priority, f.match_.fields),
            FlowBody { cookie: f.cookie, instructions: normalize_instructions(f.instructions) },
        );
    }
    for g in groups {
        let buckets = g.buckets.into_iter().map(|b| normalize_bucket(b, g.group_type)).collect();
        out.groups.insert(g.group_id, Group { group_type: g.group_type, buckets });
    }
    out
}

/// Reads a switch's flows and groups.
pub async fn read(handle: &SwitchHandle, timeout: Duration) -> Result<SwitchFlows, RequestError> {
    let flows = handle
        .request(
            of13::Message::MultipartRequest { flags: 0, body: MultipartRequest::Flow(FlowStatsRequest::default()) },
            timeout,
        )
        .await?;
    let groups = handle
        .request(of13::Message::MultipartRequest { flags: 0, body: MultipartRequest::GroupDesc }, timeout)
        .await?;
    let mut fs = Vec::new();
    for m in flows {
        if let of13::Message::MultipartReply { body: MultipartReply::Flow(stats), .. } = m {
            fs.extend(stats);
        }
    }
    let mut gs = Vec::new();
    for m in groups {
        if let of13::Message::MultipartReply { body: MultipartReply::GroupDesc(d), .. } = m {
            gs.extend(d);
        }
    }
    Ok(installed(fs, gs))
}

/// The messages that turn `have` into `want`. `have` is in the form [`installed`] reads
/// back (or an earlier `want`); the compiler emits that form (outputs other than to the
/// controller with `max_len` 0, group buckets with the defaults), so the two compare as
/// they are.
pub fn diff(want: &SwitchFlows, have: &SwitchFlows) -> Changes {
    let mut c = Changes::default();
    for (id, g) in &want.groups {
        let command = match have.groups.get(id) {
            Some(h) if h == g => continue,
            Some(h) if h.group_type == g.group_type => group_command::MODIFY,
            Some(_) => {
                // A group cannot change type in place.
                c.messages.push(group_delete(*id));
                group_command::ADD
            }
            None => group_command::ADD,
        };
        c.groups_changed += 1;
        c.messages.push(of13::Message::GroupMod(GroupMod {
            command,
            group_type: g.group_type,
            group_id: *id,
            buckets: g.buckets.clone(),
        }));
    }
    for (key, body) in &want.flows {
        let normalized =
            FlowBody { cookie: body.cookie, instructions: normalize_instructions(body.instructions.clone()) };
        if have.flows.get(key) == Some(&normalized) {
            continue;
        }
        c.flows_added += 1;
        c.messages.push(of13::Message::FlowMod(FlowMod {
            cookie: body.cookie,
            table_id: key.table,
            priority: key.priority,
            match_: key.match_.clone(),
            instructions: body.instructions.clone(),
            ..FlowMod::default()
        }));
    }
    for key in have.flows.keys().filter(|k| !want.flows.contains_key(*k)) {
        c.flows_deleted += 1;
        c.messages.push(of13::Message::FlowMod(FlowMod {
            table_id: key.table,
            priority: key.priority,
            command: of13::flow_command::DELETE_STRICT,
            match_: key.match_.clone(),
            ..FlowMod::default()
        }));
    }
    for id in have.groups.keys().filter(|id| !want.groups.contains_key(*id)) {
        c.groups_changed += 1;
        c.messages.push(group_delete(*id));
    }
    c
}

fn group_delete(group_id: u32) -> of13::Message {
    of13::Message::GroupMod(GroupMod {
        command: group_command::DELETE,
        group_type: of13::group_meter::group_type::ALL,
        group_id,
        buckets: Vec::new(),
    })
}

/// Sends `changes` and waits for the switch to have applied them (barrier).
pub async fn apply(handle: &SwitchHandle, changes: &Changes, timeout: Duration) -> Result<(), RequestError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    for m in &changes.messages {
        if let Err(e) = m.emit(0, &mut bytes) {
            tracing::error!(dpid = handle.info.dpid, error = %e, "flow message not encodable");
        }
    }
    handle.send_raw(bytes).await?;
    handle.barrier(timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::compile::{compile_switch, test_support::world};

    #[test]
    fn nothing_to_do_when_the_switch_holds_what_is_wanted() {
        let (st, plan) = world();
        let want = compile_switch(&st, &plan, 1);
        assert!(diff(&want, &want).is_empty());
        let all = diff(&want, &SwitchFlows::default());
        assert_eq!(all.flows_added, want.flows.len());
        assert_eq!(all.groups_changed, want.groups.len());
        assert_eq!(all.flows_deleted, 0);
    }

    #[test]
    fn the_compiler_emits_the_form_switches_report() {
        // diff compares compiled flows with read-back ones as they are: the compiler must
        // already produce the normalized form.
        let (st, plan) = world();
        for dpid in [1, 2] {
            let want = compile_switch(&st, &plan, dpid);
            for body in want.flows.values() {
                assert_eq!(normalize_instructions(body.instructions.clone()), body.instructions);
            }
            for g in want.groups.values() {
                for b in &g.buckets {
                    assert_eq!(&normalize_bucket(b.clone(), g.group_type), b);
                }
            }
        }
    }

    #[test]
    fn only_the_difference_is_sent() {
        let (mut st, plan0) = world();
        let before = compile_switch(&st, &plan0, 1);
        // r1 loses port security: its anti-spoofing and ACL flows change; nothing else.
        let mut p = st.ports["r1"].clone();
        p.port_security = false;
        st.ports.insert("r1".into(), p);
        let after = compile_switch(&st, &plan0, 1);
        let c = diff(&after, &before);
        assert!(c.flows_added > 0 && c.flows_deleted > 0);
        assert!(c.flows_added + c.flows_deleted < before.flows.len() / 2, "{c:?}");
        // Stale flows of another controller (unknown cookie) are removed.
        let mut have = after.clone();
        have.add(5, 1, vec![], 0x1234, vec![]);
        let c = diff(&after, &have);
        assert_eq!((c.flows_added, c.flows_deleted), (0, 1));
    }
}
