//! The API and its store, on SQLite and on PostgreSQL: every test runs against both.
//!
//! PostgreSQL must answer on 127.0.0.1:5432 with the role `tenet`/`tenet` allowed to
//! create databases (`labs/setup-host.sh` sets that up; `TENET_TEST_POSTGRES` overrides
//! the admin URL). Each test makes its own database and drops it afterwards. When
//! PostgreSQL is not reachable the PostgreSQL variants fail and say so.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tenet_netapi::identity::bootstrap;
use tenet_netapi::{router, Config, Store};
use tower::ServiceExt;

mod common;

use common::Db;

/// The API in-process, with an admin token.
struct Api {
    app: Router,
    store: Store,
    admin: String,
    _db: Db,
}

impl Api {
    async fn new(db: Db) -> Api {
        Api::with_config(db, Config::new("http://127.0.0.1:9696")).await
    }

    async fn with_config(db: Db, config: Config) -> Api {
        let store = Store::open(&db.url).await.expect("open store");
        bootstrap(&store, "admin", "admin", "adminpw").await.expect("bootstrap");
        let app = router(store.clone(), config);
        let mut api = Api { app, store, admin: String::new(), _db: db };
        api.admin = api.token("admin", "adminpw", "admin").await;
        api
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut req = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if !token.is_empty() {
            req = req.header("x-auth-token", token);
        }
        let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        (status, value, headers)
    }

    async fn ok(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let body = if body.is_null() { None } else { Some(body.to_string()) };
        let (status, value, _) = self.call(method, path, token, body.as_deref()).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "password": password, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let (status, value, headers) = self.call("POST", "/v3/auth/tokens", "", Some(&body.to_string())).await;
        assert_eq!(status, StatusCode::CREATED, "token for {user}: {value}");
        headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("X-Subject-Token").to_string()
    }

    /// Makes a project with one user of `role`; returns the user's token.
    async fn project_user(&self, project: &str, user: &str, role: &str) -> String {
        let pid = match self.call("GET", &format!("/v3/projects?name={project}"), &self.admin, None).await.1["projects"]
            [0]["id"]
            .as_str()
        {
            Some(id) => id.to_string(),
            None => self.ok("POST", "/v3/projects", &self.admin, json!({"project": {"name": project}})).await
                ["project"]["id"]
                .as_str()
                .expect("project id")
                .to_string(),
        };
        let u = self
            .ok(
                "POST",
                "/v3/users",
                &self.admin,
                json!({"user": {"name": user, "password": "pw", "default_project_id": pid}}),
            )
            .await;
        let uid = u["user"]["id"].as_str().expect("user id").to_string();
        self.ok("PUT", &format!("/v3/projects/{pid}/users/{uid}/roles/{role}"), &self.admin, Value::Null).await;
        self.token(user, "pw", project).await
    }

    async fn revision(&self) -> i64 {
        self.store.revision().await.expect("revision")
    }
}

/// Runs a test body against SQLite and PostgreSQL.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Db::sqlite()).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Db::postgres().await).await;
            }
        }
    };
}

async fn net_with_subnet(api: &Api, token: &str, name: &str, cidr: &str) -> (String, String) {
    let net = api.ok("POST", "/v2.0/networks", token, json!({"network": {"name": name}})).await;
    let net_id = net["network"]["id"].as_str().expect("net id").to_string();
    let sub = api
        .ok(
            "POST",
            "/v2.0/subnets",
            token,
            json!({"subnet": {"name": format!("{name}-sub"), "network_id": net_id, "cidr": cidr, "ip_version": 4}}),
        )
        .await;
    (net_id, sub["subnet"]["id"].as_str().expect("subnet id").to_string())
}

async fn every_write_bumps_the_revision_once_and_is_logged(db: Db) {
    let api = Api::new(db).await;
    let before = api.revision().await;
    let net = api
        .ok("POST", "/network/v2.0/networks", &api.admin, json!({"network": {"name": "n1", "admin_state_up": true}}))
        .await;
    assert_eq!(api.revision().await, before + 1);
    assert_eq!(net["network"]["revision_number"], json!(before + 1));
    let changes = api.store.changes_since(before).await.expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].kind.as_str(), changes[0].op.as_str()), ("network", "put"));
    assert_eq!(changes[0].body["name"], json!("n1"));
    let id = net["network"]["id"].as_str().expect("id");
    let (status, _, _) = api.call("DELETE", &format!("/v2.0/networks/{id}"), &api.admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let changes = api.store.changes_since(before + 1).await.expect("changes");
    assert_eq!(changes.iter().map(|c| c.op.as_str()).collect::<Vec<_>>(), vec!["delete"]);
    // Reopening runs no migration twice.
    Store::open(&api._db.url).await.expect("reopen");
}
on_both!(every_write_bumps_the_revision_once_and_is_logged);

async fn bad_input_gets_a_neutron_error_and_writes_nothing(db: Db) {
    let api = Api::new(db).await;
    let t = api.admin.clone();
    let (net, sub) = net_with_subnet(&api, &t, "n1", "10.0.0.0/29").await;
    let mac_port = api
        .ok("POST", "/v2.0/ports", &t, json!({"port": {"network_id": net, "mac_address": "fa:16:3e:00:00:01"}}))
        .await;
    assert_eq!(mac_port["port"]["mac_address"], json!("fa:16:3e:00:00:01"));
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("POST", "/v2.0/networks", "{\"network\": {\"name\": ".into(), 400, "Malformed request body"),
        (
            "POST",
            "/v2.0/networks",
            json!({"network": {"name": "x", "bogus": 1}}).to_string(),
            400,
            "Unrecognized attribute(s) 'bogus'",
        ),
        (
            "POST",
            "/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": "10.1.0.5/24", "ip_version": 4}}).to_string(),
            400,
            "10.1.0.0/24",
        ),
        (
            "POST",
            "/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": "300.1.0.0/24", "ip_version": 4}}).to_string(),
            400,
            "not a valid IP subnet",
        ),
        (
            "POST",
            "/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}}).to_string(),
            400,
            "overlaps",
        ),
        (
            "POST",
            "/v2.0/subnets",
            json!({"subnet": {"network_id": "nope", "cidr": "10.9.0.0/24", "ip_version": 4}}).to_string(),
            404,
            "Network nope could not be found",
        ),
        (
            "POST",
            "/v2.0/ports",
            json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.1.5"}]}})
                .to_string(),
            400,
            "not a valid IP for the specified subnet",
        ),
        (
            "POST",
            "/v2.0/ports",
            json!({"port": {"network_id": net, "mac_address": "fa:16:3e:00:00:01"}}).to_string(),
            409,
            "mac address fa:16:3e:00:00:01 is in use",
        ),
        (
            "POST",
            "/v2.0/ports",
            json!({"port": {"network_id": net, "mac_address": "zz"}}).to_string(),
            400,
            "not a valid MAC",
        ),
        (
            "POST",
            "/v2.0/ports",
            json!({"port": {"network_id": net, "color": "red"}}).to_string(),
            400,
            "Unrecognized attribute(s) 'color'",
        ),
        (
            "POST",
            "/v2.0/ports",
            json!({"port": {"network_id": net, "security_groups": ["nope"]}}).to_string(),
            404,
            "Security group nope could not be found",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let before = api.revision().await;
        let (got, value, _) = api.call(method, path, &t, Some(&body)).await;
        assert_eq!(got.as_u16(), status, "{path} {body}: {value}");
        let message = value["NeutronError"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{path} {body}: message {message:?} lacks {needle:?}");
        assert!(value["NeutronError"]["type"].is_string(), "{value}");
        assert_eq!(api.revision().await, before, "{path} {body} moved the revision");
    }
    // The /29 has 5 assignable addresses after the gateway; one is taken by the MAC port.
    for _ in 0..4 {
        api.ok("POST", "/v2.0/ports", &t, json!({"port": {"network_id": net}})).await;
    }
    let before = api.revision().await;
    let ports_before = api.ok("GET", "/v2.0/ports", &t, Value::Null).await["ports"].as_array().map(Vec::len);
    let (status, value, _) =
        api.call("POST", "/v2.0/ports", &t, Some(&json!({"port": {"network_id": net}}).to_string())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{value}");
    assert_eq!(value["NeutronError"]["type"], json!("IpAddressGenerationFailure"));
    assert_eq!(api.revision().await, before);
    let ports_after = api.ok("GET", "/v2.0/ports", &t, Value::Null).await["ports"].as_array().map(Vec::len);
    assert_eq!(ports_before, ports_after, "a failed port create left a port behind");
}
on_both!(bad_input_gets_a_neutron_error_and_writes_nothing);

async fn ipam_allocates_fixed_and_next_free_addresses(db: Db) {
    let api = Api::new(db).await;
    let t = api.admin.clone();
    let (net, sub) = net_with_subnet(&api, &t, "n1", "192.168.5.0/24").await;
    // The same CIDR on another network is fine.
    net_with_subnet(&api, &t, "n2", "192.168.5.0/24").await;
    let p = api
        .ok(
            "POST",
            "/v2.0/ports",
            &t,
            json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "192.168.5.77"}]}}),
        )
        .await;
    assert_eq!(p["port"]["fixed_ips"], json!([{"subnet_id": sub, "ip_address": "192.168.5.77"}]));
    let (status, v, _) = api
        .call(
            "POST",
            "/v2.0/ports",
            &t,
            Some(&json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "192.168.5.77"}]}}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["NeutronError"]["type"], json!("IpAddressAlreadyAllocated"));
    let q = api.ok("POST", "/v2.0/ports", &t, json!({"port": {"network_id": net}})).await;
    assert_eq!(q["port"]["fixed_ips"][0]["ip_address"], json!("192.168.5.2"));
    let by_ip = api.ok("GET", "/v2.0/ports?fixed_ips=ip_address%3D192.168.5.77", &t, Value::Null).await;
    assert_eq!(by_ip["ports"].as_array().map(Vec::len), Some(1));
    // Freed addresses come back.
    let qid = q["port"]["id"].as_str().expect("id");
    api.call("DELETE", &format!("/v2.0/ports/{qid}"), &t, None).await;
    let r = api.ok("POST", "/v2.0/ports", &t, json!({"port": {"network_id": net}})).await;
    assert_eq!(r["port"]["fixed_ips"][0]["ip_address"], json!("192.168.5.2"));
    // A subnet in use cannot go; nor can its network.
    let (status, v, _) = api.call("DELETE", &format!("/v2.0/subnets/{sub}"), &t, None).await;
    assert_eq!((status, v["NeutronError"]["type"].clone()), (StatusCode::CONFLICT, json!("SubnetInUse")));
    let (status, v, _) = api.call("DELETE", &format!("/v2.0/networks/{net}"), &t, None).await;
    assert_eq!((status, v["NeutronError"]["type"].clone()), (StatusCode::CONFLICT, json!("NetworkInUse")));
    // Subnet options round-trip and lists are never null.
    let s = api
        .ok(
            "POST",
            "/v2.0/subnets",
            &t,
            json!({"subnet": {"network_id": net, "cidr": "10.5.0.0/24", "ip_version": 4, "gateway_ip": null,
            "allocation_pools": [{"start": "10.5.0.10", "end": "10.5.0.20"}], "dns_nameservers": ["10.5.0.1"],
            "host_routes": [{"destination": "10.6.0.0/16", "nexthop": "10.5.0.1"}]}}),
        )
        .await;
    assert_eq!(s["subnet"]["gateway_ip"], Value::Null);
    assert_eq!(s["subnet"]["allocation_pools"], json!([{"start": "10.5.0.10", "end": "10.5.0.20"}]));
    assert_eq!(s["subnet"]["host_routes"][0]["nexthop"], json!("10.5.0.1"));
    let plain = api.ok("GET", &format!("/v2.0/subnets/{sub}"), &t, Value::Null).await;
    for key in ["allocation_pools", "dns_nameservers", "host_routes"] {
        assert!(plain["subnet"][key].is_array(), "{key} must be a list: {plain}");
    }
}
on_both!(ipam_allocates_fixed_and_next_free_addresses);

async fn members_see_and_change_only_their_project(db: Db) {
    let api = Api::new(db).await;
    let alice = api.project_user("p1", "alice", "member").await;
    let bob = api.project_user("p2", "bob", "member").await;
    let rita = api.project_user("p1", "rita", "reader").await;
    let (net, _) = net_with_subnet(&api, &alice, "a-net", "10.0.0.0/24").await;
    let path = format!("/v2.0/networks/{net}");
    let (status, v, _) = api.call("GET", &path, &bob, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["NeutronError"]["type"], json!("NetworkNotFound"));
    assert_eq!(api.call("DELETE", &path, &bob, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.call("PUT", &path, &bob, Some(r#"{"network": {"name": "mine"}}"#)).await.0, StatusCode::NOT_FOUND);
    let listed = api.ok("GET", "/v2.0/networks?name=a-net", &bob, Value::Null).await;
    assert_eq!(listed["networks"], json!([]));
    let port = json!({"port": {"network_id": net}}).to_string();
    assert_eq!(api.call("POST", "/v2.0/ports", &bob, Some(&port)).await.0, StatusCode::NOT_FOUND);
    // The reader sees but cannot write.
    assert_eq!(api.ok("GET", &path, &rita, Value::Null).await["network"]["name"], json!("a-net"));
    let before = api.revision().await;
    let (status, v, _) = api.call("POST", "/v2.0/networks", &rita, Some(r#"{"network": {"name": "r"}}"#)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(api.call("DELETE", &path, &rita, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.revision().await, before);
    // Members cannot use identity admin calls; the admin sees everything.
    assert_eq!(
        api.call("POST", "/v3/projects", &alice, Some(r#"{"project": {"name": "x"}}"#)).await.0,
        StatusCode::FORBIDDEN
    );
    let all = api.ok("GET", "/v2.0/networks", &api.admin, Value::Null).await;
    assert!(all["networks"].as_array().is_some_and(|n| n.iter().any(|n| n["id"] == json!(net))));
    // No token, a bad token: 401.
    assert_eq!(api.call("GET", "/v2.0/networks", "", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.call("GET", "/v2.0/networks", "bogus", None).await.0, StatusCode::UNAUTHORIZED);
}
on_both!(members_see_and_change_only_their_project);

async fn tokens_expire(db: Db) {
    let mut config = Config::new("http://127.0.0.1:9696");
    config.token_ttl_secs = 1;
    let api = Api::with_config(db, config).await;
    let t = api.admin.clone();
    let (status, body, _) = api.call("GET", "/v2.0/networks", &t, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body, _) = api.call("GET", "/v2.0/networks", &t, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
on_both!(tokens_expire);

async fn token_body_has_catalog_user_and_project(db: Db) {
    let api = Api::new(db).await;
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "adminpw", "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let (status, v, _) = api.call("POST", "/v3/auth/tokens", "", Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = &v["token"];
    assert!(token["user"]["id"].is_string() && token["project"]["id"].is_string() && token["expires_at"].is_string());
    let types: Vec<&str> =
        token["catalog"].as_array().expect("catalog").iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, vec!["identity", "network", "compute", "image"]);
    assert_eq!(token["catalog"][1]["endpoints"][0]["url"], json!("http://127.0.0.1:9696/network"));
    assert_eq!(token["catalog"][1]["endpoints"][0]["region"], json!("RegionOne"));
    let wrong = body.to_string().replace("adminpw", "nope");
    assert_eq!(api.call("POST", "/v3/auth/tokens", "", Some(&wrong)).await.0, StatusCode::UNAUTHORIZED);
    // EC2 credentials.
    let uid = token["user"]["id"].as_str().expect("uid");
    let pid = token["project"]["id"].as_str().expect("pid");
    let c = api.ok("POST", &format!("/v3/users/{uid}/credentials/OS-EC2"), &api.admin, json!({"tenant_id": pid})).await;
    assert!(c["credential"]["access"].is_string() && c["credential"]["secret"].is_string());
    let l = api.ok("GET", &format!("/v3/users/{uid}/credentials/OS-EC2"), &api.admin, Value::Null).await;
    assert_eq!(l["credentials"].as_array().map(Vec::len), Some(1));
    assert_eq!(api.ok("GET", "/v3", "", Value::Null).await["version"]["id"], json!("v3.14"));
}
on_both!(token_body_has_catalog_user_and_project);

async fn security_groups_follow_neutron_semantics(db: Db) {
    let api = Api::new(db).await;
    let t = api.project_user("p1", "alice", "member").await;
    let groups = api.ok("GET", "/v2.0/security-groups", &t, Value::Null).await;
    let default = &groups["security_groups"][0];
    assert_eq!(default["name"], json!("default"));
    assert_eq!(default["security_group_rules"].as_array().map(Vec::len), Some(4));
    let web = api
        .ok("POST", "/v2.0/security-groups", &t, json!({"security_group": {"name": "web", "description": "web"}}))
        .await;
    let rules = web["security_group"]["security_group_rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 2);
    assert!(rules.iter().all(|r| r["direction"] == json!("egress")));
    let web_id = web["security_group"]["id"].as_str().expect("id").to_string();
    let default_id = default["id"].as_str().expect("id").to_string();
    let rule = json!({"security_group_rule": {"security_group_id": web_id, "direction": "ingress", "ethertype": "IPv4",
        "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}});
    api.ok("POST", "/v2.0/security-group-rules", &t, rule.clone()).await;
    let (status, v, _) = api.call("POST", "/v2.0/security-group-rules", &t, Some(&rule.to_string())).await;
    assert_eq!((status, v["NeutronError"]["type"].clone()), (StatusCode::CONFLICT, json!("SecurityGroupRuleExists")));
    let remote = json!({"security_group_rule": {"security_group_id": web_id, "direction": "ingress", "remote_group_id": default_id}});
    api.ok("POST", "/v2.0/security-group-rules", &t, remote).await;
    let bad = json!({"security_group_rule": {"security_group_id": web_id, "direction": "ingress", "protocol": "tcp", "port_range_min": 30, "port_range_max": 20}});
    assert_eq!(
        api.call("POST", "/v2.0/security-group-rules", &t, Some(&bad.to_string())).await.0,
        StatusCode::BAD_REQUEST
    );
    // In use by a port: 409; default group: 409.
    let (net, _) = net_with_subnet(&api, &t, "n", "10.0.0.0/24").await;
    let port =
        api.ok("POST", "/v2.0/ports", &t, json!({"port": {"network_id": net, "security_groups": [web_id]}})).await;
    let (status, v, _) = api.call("DELETE", &format!("/v2.0/security-groups/{web_id}"), &t, None).await;
    assert_eq!((status, v["NeutronError"]["type"].clone()), (StatusCode::CONFLICT, json!("SecurityGroupInUse")));
    assert_eq!(
        api.call("DELETE", &format!("/v2.0/security-groups/{default_id}"), &t, None).await.0,
        StatusCode::CONFLICT
    );
    let pid = port["port"]["id"].as_str().expect("id");
    api.call("DELETE", &format!("/v2.0/ports/{pid}"), &t, None).await;
    assert_eq!(
        api.call("DELETE", &format!("/v2.0/security-groups/{web_id}"), &t, None).await.0,
        StatusCode::NO_CONTENT
    );
    // A port without groups gets the default group.
    let p = api.ok("POST", "/v2.0/ports", &t, json!({"port": {"network_id": net}})).await;
    assert_eq!(p["port"]["security_groups"], json!([default_id]));
}
on_both!(security_groups_follow_neutron_semantics);

async fn port_bindings_move_a_port_between_hosts(db: Db) {
    let api = Api::new(db).await;
    let t = api.admin.clone();
    let (net, _) = net_with_subnet(&api, &t, "n", "10.0.0.0/24").await;
    let p = api
        .ok(
            "POST",
            "/v2.0/ports",
            &t,
            json!({"port": {"network_id": net, "binding:host_id": "h1", "binding:profile": {"bridge": "br0"}}}),
        )
        .await;
    assert_eq!(p["port"]["binding:host_id"], json!("h1"));
    assert_eq!(p["port"]["binding:vif_type"], json!("ovs"));
    let id = p["port"]["id"].as_str().expect("id").to_string();
    let b = api.ok("POST", &format!("/v2.0/ports/{id}/bindings"), &t, json!({"binding": {"host": "h2"}})).await;
    assert_eq!(b["binding"]["status"], json!("INACTIVE"));
    let (status, _, _) =
        api.call("POST", &format!("/v2.0/ports/{id}/bindings"), &t, Some(r#"{"binding": {"host": "h2"}}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let a = api.ok("PUT", &format!("/v2.0/ports/{id}/bindings/h2/activate"), &t, Value::Null).await;
    assert_eq!(a["status"], json!("ACTIVE"));
    let list = api.ok("GET", &format!("/v2.0/ports/{id}/bindings"), &t, Value::Null).await;
    let status_of = |h: &str| {
        list["bindings"].as_array().and_then(|l| l.iter().find(|b| b["host"] == json!(h))).map(|b| b["status"].clone())
    };
    assert_eq!(status_of("h1"), Some(json!("INACTIVE")));
    assert_eq!(status_of("h2"), Some(json!("ACTIVE")));
    assert_eq!(
        api.ok("GET", &format!("/v2.0/ports/{id}"), &t, Value::Null).await["port"]["binding:host_id"],
        json!("h2")
    );
    assert_eq!(api.call("DELETE", &format!("/v2.0/ports/{id}/bindings/h1"), &t, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.call("DELETE", &format!("/v2.0/ports/{id}/bindings/h1"), &t, None).await.0, StatusCode::NOT_FOUND);
    // Members may not bind.
    let alice = api.project_user("p1", "alice", "member").await;
    let (anet, _) = net_with_subnet(&api, &alice, "an", "10.0.0.0/24").await;
    let body = json!({"port": {"network_id": anet, "binding:host_id": "h1"}}).to_string();
    assert_eq!(api.call("POST", "/v2.0/ports", &alice, Some(&body)).await.0, StatusCode::FORBIDDEN);
}
on_both!(port_bindings_move_a_port_between_hosts);

async fn steering_objects_coerce_strings_and_refuse_deleting_used_parts(db: Db) {
    let api = Api::new(db).await;
    let t = api.project_user("p1", "alice", "member").await;
    let (net, _) = net_with_subnet(&api, &t, "n", "10.0.0.0/24").await;
    let mut ports = Vec::new();
    for name in ["in", "out", "src"] {
        let p = api.ok("POST", "/v2.0/ports", &t, json!({"port": {"network_id": net, "name": name}})).await;
        ports.push(p["port"]["id"].as_str().expect("id").to_string());
    }
    let pp = api
        .ok(
            "POST",
            "/v2.0/sfc/port_pairs",
            &t,
            json!({"port_pair": {"name": "pp", "ingress": ports[0], "egress": ports[1],
            "service_function_parameters": {"correlation": "None", "weight": "2"}}}),
        )
        .await;
    assert_eq!(pp["port_pair"]["service_function_parameters"], json!({"correlation": null, "weight": 2}));
    let pp_id = pp["port_pair"]["id"].as_str().expect("id").to_string();
    let ppg = api
        .ok(
            "POST",
            "/v2.0/sfc/port_pair_groups",
            &t,
            json!({"port_pair_group": {"name": "g", "port_pairs": [pp_id], "tap_enabled": "false"}}),
        )
        .await;
    let ppg_id = ppg["port_pair_group"]["id"].as_str().expect("id").to_string();
    let fc = api
        .ok(
            "POST",
            "/v2.0/sfc/flow_classifiers",
            &t,
            json!({"flow_classifier": {"name": "fc", "protocol": "tcp", "destination_port_range_min": "80",
            "destination_port_range_max": "80", "logical_source_port": ports[2], "source_ip_prefix": "10.0.0.0/24"}}),
        )
        .await;
    assert_eq!(fc["flow_classifier"]["destination_port_range_min"], json!(80));
    let fc_id = fc["flow_classifier"]["id"].as_str().expect("id").to_string();
    let pc = api
        .ok(
            "POST",
            "/v2.0/sfc/port_chains",
            &t,
            json!({"port_chain": {"name": "pc", "port_pair_groups": [ppg_id], "flow_classifiers": [fc_id],
            "chain_parameters": {"correlation": "mpls", "symmetric": "false"}}}),
        )
        .await;
    assert_eq!(
        pc["port_chain"]["chain_parameters"],
        json!({"correlation": "mpls", "symmetric": false, "fail_mode": "closed"})
    );
    for (path, kind) in [
        (format!("/v2.0/sfc/port_pair_groups/{ppg_id}"), "PortPairGroupInUse"),
        (format!("/v2.0/sfc/flow_classifiers/{fc_id}"), "FlowClassifierInUse"),
        (format!("/v2.0/sfc/port_pairs/{pp_id}"), "PortPairInUse"),
        (format!("/v2.0/ports/{}", ports[0]), "PortInUse"),
    ] {
        let (status, v, _) = api.call("DELETE", &path, &t, None).await;
        assert_eq!((status, v["NeutronError"]["type"].clone()), (StatusCode::CONFLICT, json!(kind)), "{path}");
    }
    let other = api.project_user("p2", "bob", "member").await;
    assert_eq!(
        api.call(
            "GET",
            &format!("/v2.0/sfc/port_chains/{}", pc["port_chain"]["id"].as_str().unwrap_or_default()),
            &other,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let pc_id = pc["port_chain"]["id"].as_str().expect("id");
    assert_eq!(api.call("DELETE", &format!("/v2.0/sfc/port_chains/{pc_id}"), &t, None).await.0, StatusCode::NO_CONTENT);
    let (status, v, _) = api
        .call(
            "POST",
            "/v2.0/sfc/port_chains",
            &t,
            Some(
                &json!({"port_chain": {"port_pair_groups": [ppg_id], "chain_parameters": {"fail_mode": "sometimes"}}})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["NeutronError"]["message"].as_str().unwrap_or_default().contains("fail_mode"), "{v}");
    assert_eq!(
        api.call("DELETE", &format!("/v2.0/sfc/port_pair_groups/{ppg_id}"), &t, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.call("DELETE", &format!("/v2.0/sfc/port_pairs/{pp_id}"), &t, None).await.0, StatusCode::NO_CONTENT);
}
on_both!(steering_objects_coerce_strings_and_refuse_deleting_used_parts);

async fn concurrent_port_creates_get_distinct_addresses(db: Db) {
    let api = std::sync::Arc::new(Api::new(db).await);
    let t = api.admin.clone();
    let (net, _) = net_with_subnet(&api, &t, "n", "10.0.0.0/27").await;
    let before = api.revision().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (api, t, net) = (api.clone(), t.clone(), net.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"port": {"network_id": net, "name": format!("p{i}")}}).to_string();
            api.call("POST", "/v2.0/ports", &t, Some(&body)).await
        }));
    }
    let mut ips = std::collections::HashSet::new();
    for task in tasks {
        let (status, v, _) = task.await.expect("task");
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert!(ips.insert(v["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap_or_default().to_string()), "{v}");
    }
    assert_eq!(ips.len(), 16);
    assert_eq!(api.revision().await, before + 16, "one revision per write");
    let changes = api.store.changes_since(before).await.expect("changes");
    assert_eq!(changes.iter().filter(|c| c.kind == "port").count(), 16, "each port logged once");
}
on_both!(concurrent_port_creates_get_distinct_addresses);
