//! Table 20, steer: where IPS steering policies will divert traffic. Today it only
//! passes everything on to forwarding.
//!
//! | priority | match | actions |
//! |---|---|---|
//! | 0 | anything | goto 30 |

use crate::tenant::flows::{cookie, table, SwitchFlows};
use crate::wire::of13::Instruction;

pub fn compile(out: &mut SwitchFlows) {
    out.add(
        table::STEER,
        0,
        vec![],
        cookie::of(cookie::INFRA, "pipeline"),
        vec![Instruction::GotoTable(table::FORWARD)],
    );
}
