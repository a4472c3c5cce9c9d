# osken_learning.py -- the os-ken peer controller for tenet's side-by-side benchmarks.
#
# A minimal L2 learning switch for os-ken 2.5 (Debian python3-os-ken), speaking
# OpenFlow 1.0 and 1.3. It mirrors tenet's Rust learning switch so that both send
# the same OpenFlow messages, and a benchmark (e.g. cbench) counts the same thing:
#
#   on PACKET_IN: learn src MAC -> in_port (per switch), then
#     packet buffered (buffer_id != NO_BUFFER)    -> exactly ONE message:
#       dst known   -> FLOW_MOD add (in_port, eth_dst) -> output:port, with the
#                      buffer_id, so the switch releases the buffered packet itself
#       dst unknown -> PACKET_OUT flood with the buffer_id (no flow installed)
#     packet not buffered (buffer_id == NO_BUFFER; e.g. OVS 3.x always):
#       dst known   -> FLOW_MOD add (no buffer) + PACKET_OUT output:port with data
#       dst unknown -> PACKET_OUT flood with data
#   a dst learned on the packet's own in_port is dropped (no message).
#   OF1.3: on switch features, install a table-miss flow (priority 0, output
#   CONTROLLER, max_len NO_BUFFER). Learned flows: priority 1, no timeouts.
#
# Run:
#   osken-manager --ofp-listen-host 127.0.0.1 --ofp-tcp-listen-port 6653 labs/osken_learning.py

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import addrconv
from os_ken.ofproto import ofproto_v1_0, ofproto_v1_3

ETH_TYPE_LLDP = b"\x88\xcc"


class LearningSwitch(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_0.OFP_VERSION, ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mac_to_port = {}  # dpid -> {mac bytes: port}

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self.mac_to_port[dp.id] = {}
        if ofp.OFP_VERSION == ofproto_v1_3.OFP_VERSION:
            actions = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
            dp.send_msg(parser.OFPFlowMod(dp, priority=0, match=parser.OFPMatch(),
                                          instructions=inst))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        of13 = ofp.OFP_VERSION == ofproto_v1_3.OFP_VERSION
        data = msg.data
        if len(data) < 14 or data[12:14] == ETH_TYPE_LLDP:
            return
        dst, src = bytes(data[0:6]), bytes(data[6:12])
        in_port = msg.match["in_port"] if of13 else msg.in_port

        table = self.mac_to_port.setdefault(dp.id, {})
        table[src] = in_port
        out_port = table.get(dst)
        if out_port == in_port:
            return  # destination is behind the input port: drop
        buffered = msg.buffer_id != ofp.OFP_NO_BUFFER

        if out_port is not None:
            actions = [parser.OFPActionOutput(out_port)]
            if of13:
                match = parser.OFPMatch(in_port=in_port,
                                        eth_dst=addrconv.mac.bin_to_text(dst))
                inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
                fm = parser.OFPFlowMod(dp, priority=1, match=match, instructions=inst,
                                       buffer_id=msg.buffer_id)
            else:
                match = parser.OFPMatch(in_port=in_port, dl_dst=dst)
                fm = parser.OFPFlowMod(dp, match=match, priority=1, actions=actions,
                                       buffer_id=msg.buffer_id)
            dp.send_msg(fm)
            if buffered:
                return  # the switch applies the flow to the buffered packet
        else:
            actions = [parser.OFPActionOutput(ofp.OFPP_FLOOD)]

        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=msg.buffer_id, in_port=in_port,
                                        actions=actions,
                                        data=None if buffered else data))
