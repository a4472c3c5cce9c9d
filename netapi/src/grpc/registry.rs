//! `PortRegistry`: compute and storage nodes register the ports they plug into a host
//! bridge (data flow 3) and move their bindings for migration (data flow 5).
//!
//! Each call is one write transaction (one revision), sharing its logic with the REST
//! ports API (`neutron::ports`). A service acts on ports of every project, as an admin
//! does through REST.

use serde_json::{json, Map, Value};
use tonic::{Request, Response, Status};

use super::pb::{self, port_registry_server::PortRegistry};
use super::{authorize, status_of, store_status};
use crate::auth::{Caller, Role};
use crate::neutron::ports::{
    activate_in, add_inactive_binding, adopt_in, bindings_of, create_in, delete_in, parse_mac, remove_binding_in,
    Adoption, NewPort, Placement,
};
use crate::neutron::subnets::FixedIpRequest;
use crate::neutron::{fetch, project_of, NETWORK, PORT};
use crate::store::{get_body, Store, WriteTx};

/// The `PortRegistry` service.
#[derive(Clone, Debug)]
pub struct Registry {
    store: Store,
}

impl Registry {
    /// A registry writing to `store`.
    pub fn new(store: Store) -> Registry {
        Registry { store }
    }

    /// The authorized caller, acting with an admin's reach over projects.
    async fn acting<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let caller = authorize(&self.store, request.metadata()).await?;
        Ok(Caller { role: Role::Admin, ..caller })
    }
}

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// A checked, non-empty port id.
fn port_id(id: &str) -> Result<String, Status> {
    if id.is_empty() {
        return Err(invalid("port_id is required"));
    }
    uuid::Uuid::parse_str(id).map_err(|_| invalid(format!("port_id {id:?} is not a UUID")))?;
    Ok(id.to_string())
}

/// The placement of a binding spec (datapath id 0 counts as unknown).
fn placement(spec: &pb::BindingSpec) -> Placement {
    Placement {
        datapath_id: (spec.datapath_id != 0).then_some(spec.datapath_id),
        interface_name: spec.interface_name.clone(),
    }
}

fn vnic_of(spec: &pb::BindingSpec) -> String {
    if spec.vnic_type.is_empty() {
        "normal".into()
    } else {
        spec.vnic_type.clone()
    }
}

fn fixed_ip_requests(ips: &[pb::FixedIp]) -> Result<Vec<FixedIpRequest>, Status> {
    ips.iter()
        .map(|ip| {
            let req = FixedIpRequest {
                subnet_id: (!ip.subnet_id.is_empty()).then(|| ip.subnet_id.clone()),
                ip_address: (!ip.ip_address.is_empty()).then(|| ip.ip_address.clone()),
            };
            if req.subnet_id.is_none() && req.ip_address.is_none() {
                return Err(invalid("a fixed IP needs subnet_id or ip_address"));
            }
            Ok(req)
        })
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A binding's JSON body as a message.
pub fn binding_message(b: &Value) -> pb::Binding {
    let status = match str_of(b, "status") {
        "ACTIVE" => pb::BindingStatus::Active,
        "INACTIVE" => pb::BindingStatus::Inactive,
        _ => pb::BindingStatus::Unspecified,
    };
    let place = Placement::of_binding(b);
    pb::Binding {
        host: str_of(b, "host").to_string(),
        datapath_id: place.datapath_id.unwrap_or(0),
        interface_name: place.interface_name,
        status: status as i32,
        vnic_type: str_of(b, "vnic_type").to_string(),
    }
}

/// A port's JSON body and its bindings as a message.
pub fn port_message(port: &Value, bindings: &[Value]) -> pb::Port {
    let strings = |key: &str| -> Vec<String> {
        port.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let fixed_ips = port
        .get("fixed_ips")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|ip| pb::FixedIp {
                    subnet_id: str_of(ip, "subnet_id").to_string(),
                    ip_address: str_of(ip, "ip_address").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    pb::Port {
        id: str_of(port, "id").to_string(),
        network_id: str_of(port, "network_id").to_string(),
        project_id: str_of(port, "project_id").to_string(),
        name: str_of(port, "name").to_string(),
        mac_address: str_of(port, "mac_address").to_string(),
        fixed_ips,
        security_groups: strings("security_groups"),
        port_security_enabled: port.get("port_security_enabled").and_then(Value::as_bool).unwrap_or(true),
        admin_state_up: port.get("admin_state_up").and_then(Value::as_bool).unwrap_or(true),
        device_id: str_of(port, "device_id").to_string(),
        device_owner: str_of(port, "device_owner").to_string(),
        bindings: bindings.iter().map(binding_message).collect(),
        revision_number: port.get("revision_number").and_then(Value::as_i64).unwrap_or(0),
        json: port.to_string(),
    }
}

/// Reads back the port's bindings, commits, and answers the port.
async fn reply(mut tx: WriteTx, port: Value) -> Result<Response<pb::PortReply>, Status> {
    let bindings = bindings_of(&mut tx, str_of(&port, "id")).await.map_err(status_of)?;
    let revision = tx.revision();
    tx.commit().await.map_err(store_status)?;
    Ok(Response::new(pb::PortReply { port: Some(port_message(&port, &bindings)), revision }))
}

/// The stored port `id`, or NOT_FOUND.
async fn stored_port(tx: &mut WriteTx, caller: &Caller, id: &str) -> Result<Value, Status> {
    fetch(tx, PORT, caller, id).await.map_err(status_of)
}

/// The calls' bodies, run on the writer thread (see [`PortRegistry`] below).
impl Registry {
    async fn register_port_here(
        &self,
        request: Request<pb::RegisterPortRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let caller = self.acting(&request).await?;
        let req = request.into_inner();
        let id = if req.port_id.is_empty() { None } else { Some(port_id(&req.port_id)?) };
        let mac = if req.mac_address.is_empty() { None } else { Some(parse_mac(&req.mac_address).map_err(status_of)?) };
        let fixed_ips = if req.fixed_ips.is_empty() { None } else { Some(fixed_ip_requests(&req.fixed_ips)?) };
        let binding = req.binding.as_ref().filter(|b| !b.host.is_empty());
        let mut tx = self.store.begin_write().await.map_err(store_status)?;
        let existing = match &id {
            Some(id) => get_body(&mut tx, PORT.table, id).await.map_err(store_status)?,
            None => None,
        };
        let port = match existing {
            Some(port) => {
                let adoption = Adoption {
                    network_id: req.network_id.clone(),
                    mac,
                    fixed_ips,
                    device_id: (!req.device_id.is_empty()).then(|| req.device_id.clone()),
                    device_owner: (!req.device_owner.is_empty()).then(|| req.device_owner.clone()),
                    binding: binding.map(|b| (b.host.clone(), placement(b), vnic_of(b))),
                };
                adopt_in(&mut tx, port, adoption).await.map_err(status_of)?
            }
            None => {
                if req.network_id.is_empty() {
                    return Err(invalid("network_id is required"));
                }
                let network = fetch(&mut tx, NETWORK, &caller, &req.network_id).await.map_err(status_of)?;
                let project =
                    if req.project_id.is_empty() { project_of(&network).to_string() } else { req.project_id.clone() };
                let mut attrs = Map::new();
                attrs.insert("name".into(), json!(req.name));
                let new = NewPort {
                    id,
                    network_id: req.network_id.clone(),
                    project_id: Some(project),
                    attrs,
                    admin_state_up: true,
                    mac,
                    fixed_ips,
                    security_groups: (!req.security_groups.is_empty()).then(|| req.security_groups.clone()),
                    port_security: req.port_security_enabled,
                    address_pairs: json!([]),
                    device_owner: req.device_owner.clone(),
                    device_id: req.device_id.clone(),
                    vnic_type: binding.map(vnic_of).unwrap_or_else(|| "normal".into()),
                    profile: json!({}),
                    binding: binding.map(|b| (b.host.clone(), placement(b))),
                    network: Some(network),
                };
                create_in(&mut tx, &caller, new).await.map_err(status_of)?
            }
        };
        tracing::info!(
            port = str_of(&port, "id"),
            network = str_of(&port, "network_id"),
            project = project_of(&port),
            host = binding.map(|b| b.host.as_str()).unwrap_or_default(),
            datapath = binding.map(|b| b.datapath_id).unwrap_or_default(),
            interface = binding.map(|b| b.interface_name.as_str()).unwrap_or_default(),
            caller = %caller.user_name,
            "port registered"
        );
        reply(tx, port).await
    }

    async fn update_port_binding_here(
        &self,
        request: Request<pb::UpdatePortBindingRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let caller = self.acting(&request).await?;
        let req = request.into_inner();
        let id = port_id(&req.port_id)?;
        let spec = req.binding.filter(|b| !b.host.is_empty()).ok_or_else(|| invalid("binding.host is required"))?;
        let mut tx = self.store.begin_write().await.map_err(store_status)?;
        let port = stored_port(&mut tx, &caller, &id).await?;
        add_inactive_binding(&mut tx, &port, &spec.host, &vnic_of(&spec), &json!({}), &placement(&spec))
            .await
            .map_err(status_of)?;
        reply(tx, port).await
    }

    async fn activate_binding_here(
        &self,
        request: Request<pb::ActivateBindingRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let caller = self.acting(&request).await?;
        let req = request.into_inner();
        let id = port_id(&req.port_id)?;
        if req.host.is_empty() {
            return Err(invalid("host is required"));
        }
        let mut tx = self.store.begin_write().await.map_err(store_status)?;
        let port = stored_port(&mut tx, &caller, &id).await?;
        let (port, _) = activate_in(&mut tx, port, &req.host).await.map_err(status_of)?;
        reply(tx, port).await
    }

    async fn delete_port_binding_here(
        &self,
        request: Request<pb::DeletePortBindingRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let caller = self.acting(&request).await?;
        let req = request.into_inner();
        let id = port_id(&req.port_id)?;
        if req.host.is_empty() {
            return Err(invalid("host is required"));
        }
        let mut tx = self.store.begin_write().await.map_err(store_status)?;
        let port = stored_port(&mut tx, &caller, &id).await?;
        let port = remove_binding_in(&mut tx, port, &req.host).await.map_err(status_of)?;
        reply(tx, port).await
    }

    async fn delete_port_here(
        &self,
        request: Request<pb::DeletePortRequest>,
    ) -> Result<Response<pb::DeletePortReply>, Status> {
        let caller = self.acting(&request).await?;
        let id = port_id(&request.get_ref().port_id)?;
        let mut tx = self.store.begin_write().await.map_err(store_status)?;
        let port = stored_port(&mut tx, &caller, &id).await?;
        delete_in(&mut tx, &port).await.map_err(status_of)?;
        let revision = tx.revision();
        tx.commit().await.map_err(store_status)?;
        tracing::info!(port = %id, project = project_of(&port), caller = %caller.user_name, revision, "port deleted");
        Ok(Response::new(pb::DeletePortReply { revision }))
    }
}

#[tonic::async_trait]
impl PortRegistry for Registry {
    async fn register_port(
        &self,
        request: Request<pb::RegisterPortRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let this = self.clone();
        self.store.on_writer(async move { this.register_port_here(request).await }).await.map_err(store_status)?
    }

    async fn update_port_binding(
        &self,
        request: Request<pb::UpdatePortBindingRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let this = self.clone();
        self.store.on_writer(async move { this.update_port_binding_here(request).await }).await.map_err(store_status)?
    }

    async fn activate_binding(
        &self,
        request: Request<pb::ActivateBindingRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let this = self.clone();
        self.store.on_writer(async move { this.activate_binding_here(request).await }).await.map_err(store_status)?
    }

    async fn delete_port_binding(
        &self,
        request: Request<pb::DeletePortBindingRequest>,
    ) -> Result<Response<pb::PortReply>, Status> {
        let this = self.clone();
        self.store.on_writer(async move { this.delete_port_binding_here(request).await }).await.map_err(store_status)?
    }

    async fn delete_port(
        &self,
        request: Request<pb::DeletePortRequest>,
    ) -> Result<Response<pb::DeletePortReply>, Status> {
        let this = self.clone();
        self.store.on_writer(async move { this.delete_port_here(request).await }).await.map_err(store_status)?
    }
}
