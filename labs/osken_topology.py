"""os-ken topology discovery, for side-by-side discovery benchmarks with tenet.

Run: osken-manager --observe-links --ofp-listen-host 127.0.0.1 --ofp-tcp-listen-port PORT \
        os_ken.topology.switches labs/osken_topology.py
It loads os-ken's own discovery (os_ken.topology.switches, LLDP) and writes one line per
link change to the file named by $OSKEN_LINKS_LOG: "<unix time> <number of links>", so
the benchmark can tell when os-ken's view equals the lab. (Debian's os-ken ships no
rest_topology app, hence this small one.)
"""

import os
import time

from os_ken.base import app_manager
from os_ken.controller.handler import set_ev_cls
from os_ken.topology import event


class TopologyWatch(app_manager.OSKenApp):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.links = set()
        self.log_path = os.environ.get("OSKEN_LINKS_LOG", "/tmp/osken-links.log")

    def _write(self):
        with open(self.log_path, "a") as f:
            f.write("%f %d\n" % (time.time(), len(self.links)))

    @set_ev_cls(event.EventLinkAdd)
    def link_add(self, ev):
        l = ev.link
        self.links.add((l.src.dpid, l.src.port_no, l.dst.dpid, l.dst.port_no))
        self._write()

    @set_ev_cls(event.EventLinkDelete)
    def link_delete(self, ev):
        l = ev.link
        self.links.discard((l.src.dpid, l.src.port_no, l.dst.dpid, l.dst.port_no))
        self._write()
