#!/usr/bin/python3
"""Uploads a small image named `lab` to the compute service's Glance API (once), with the
credentials of an openrc in the environment. Used by labs/up.sh; the namespace driver
does not read image data, so the bytes are a placeholder.

usage: lab_image.py NETAPI_URL COMPUTE_URL
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request


def call(method, url, token=None, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(req, timeout=30) as r:
        payload = r.read()
        return r.headers, (json.loads(payload) if payload else None)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    netapi, compute = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
    user, pw, project = (os.environ.get(k) for k in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"))
    if not (user and pw and project):
        raise SystemExit("source an openrc first (OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME)")
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": pw}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    headers, _ = call("POST", netapi + "/v3/auth/tokens", body=auth)
    token = headers["X-Subject-Token"]
    for _ in range(60):  # the compute API may still be starting
        try:
            _, found = call("GET", compute + "/image/v2/images?name=lab", token)
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    else:
        raise SystemExit("the compute API at %s does not answer" % compute)
    if found["images"]:
        return
    _, img = call("POST", compute + "/image/v2/images", token,
                  {"name": "lab", "disk_format": "raw", "container_format": "bare", "visibility": "public"})
    call("PUT", "%s/image/v2/images/%s/file" % (compute, img["id"]), token, raw=b"tenet lab image\n")
    print("image lab uploaded (%s)" % img["id"])


if __name__ == "__main__":
    main()
