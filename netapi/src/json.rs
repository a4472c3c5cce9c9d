//! Request bodies and list queries: strict parsing, coercion of the string values some
//! clients send, and Neutron's list filters and `fields` selection.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Parses a request body as a JSON object (400 "Malformed request body" otherwise).
pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request("Malformed request body: the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("Malformed request body: {e}"))),
    }
}

/// The object under `key` of a request body (`{"network": {...}}`), checked against the
/// attributes the resource accepts: any other attribute is a 400.
pub fn resource_body(body: &[u8], key: &str, allowed: &[&str]) -> ApiResult<Map<String, Value>> {
    let req = parse_json(body)?;
    let Some(obj) = req.get(key) else {
        return Err(ApiError::bad_request(format!("Resource body required: '{key}' is missing")));
    };
    let Value::Object(obj) = obj else {
        return Err(ApiError::bad_request(format!("Resource body '{key}' must be an object")));
    };
    if let Some(extra) = req.as_object().and_then(|o| o.keys().find(|k| k.as_str() != key)) {
        return Err(ApiError::bad_request(format!("Unrecognized attribute(s) '{extra}'")));
    }
    let mut unknown: Vec<&str> = obj.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(ApiError::bad_request(format!("Unrecognized attribute(s) '{}'", unknown.join(", "))));
    }
    Ok(obj.clone())
}

/// A string attribute; `null` counts as absent.
pub fn opt_str(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::invalid_input(format!("'{other}' is not a valid string for {key}"))),
    }
}

/// A boolean attribute; accepts `true`/`false` and their string forms (`"True"`, `"false"`, `"1"`, `"0"`).
pub fn opt_bool(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => coerce_bool(v)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_input(format!("'{v}' cannot be converted to boolean for {key}"))),
    }
}

/// `v` as a boolean, also from its string forms.
pub fn coerce_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// An integer attribute; accepts numbers and numeric strings (`"1"`).
pub fn opt_int(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<i64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            coerce_int(v).map(Some).ok_or_else(|| ApiError::invalid_input(format!("'{v}' is not an integer for {key}")))
        }
    }
}

/// `v` as an integer, also from a numeric string.
pub fn coerce_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A list-of-strings attribute; `null` counts as absent.
pub fn opt_str_list(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<Vec<String>>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid_input(format!("'{v}' is not a string in {key}")))
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some),
        Some(other) => Err(ApiError::invalid_input(format!("'{other}' is not a list for {key}"))),
    }
}

/// Query parameters that steer listing rather than filter it.
const NOT_FILTERS: &[&str] = &["fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "verbose"];

/// True when `item` passes Neutron list filters: every filtered attribute must equal one
/// of the values given for it (values of one key are alternatives; keys combine with AND).
/// `fixed_ips=ip_address=X` and `fixed_ips=subnet_id=Y` match a port's fixed IPs.
/// Attributes the object does not have are not filtered on.
pub fn matches_filters(item: &Value, query: &[(String, String)]) -> bool {
    let mut keys: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).filter(|k| !NOT_FILTERS.contains(k)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().all(|key| {
        let Some(field) = item.get(key) else { return true };
        query.iter().filter(|(k, _)| k == key).any(|(_, want)| value_matches(key, field, want))
    })
}

fn value_matches(key: &str, field: &Value, want: &str) -> bool {
    match field {
        Value::String(s) => s == want,
        Value::Bool(b) => coerce_bool(&Value::String(want.to_string())) == Some(*b),
        Value::Number(n) => n.to_string() == want,
        Value::Null => want.is_empty() || want == "None" || want == "null",
        Value::Array(items) if key == "fixed_ips" => {
            let (sub, val) = want.split_once('=').unwrap_or(("ip_address", want));
            items.iter().any(|ip| ip.get(sub).and_then(Value::as_str) == Some(val))
        }
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some(want)),
        Value::Object(_) => false,
    }
}

/// Keeps only the attributes named by `fields=` parameters (all when there are none).
pub fn select_fields(item: Value, query: &[(String, String)]) -> Value {
    let fields: Vec<&str> = query.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect();
    if fields.is_empty() {
        return item;
    }
    match item {
        Value::Object(o) => Value::Object(o.into_iter().filter(|(k, _)| fields.contains(&k.as_str())).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert_eq!(parse_json(b"{\"network\": ").unwrap_err().status.as_u16(), 400);
        assert_eq!(parse_json(b"[1]").unwrap_err().status.as_u16(), 400);
    }

    #[test]
    fn unknown_attributes_are_refused() {
        let e = resource_body(br#"{"network": {"name": "a", "bogus": 1}}"#, "network", &["name"]).unwrap_err();
        assert!(e.message.contains("Unrecognized attribute(s) 'bogus'"), "{}", e.message);
    }

    #[test]
    fn strings_coerce_to_bools_and_ints() {
        let o = json!({"symmetric": "false", "weight": "1"});
        let o = o.as_object().unwrap();
        assert_eq!(opt_bool(o, "symmetric").unwrap(), Some(false));
        assert_eq!(opt_int(o, "weight").unwrap(), Some(1));
    }

    #[test]
    fn filters_match_names_bools_lists_and_fixed_ips() {
        let port = json!({"name": "p1", "admin_state_up": true, "security_groups": ["sg1"],
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.3"}]});
        assert!(matches_filters(&port, &q(&[("name", "p1"), ("admin_state_up", "True")])));
        assert!(matches_filters(&port, &q(&[("name", "x"), ("name", "p1")])));
        assert!(!matches_filters(&port, &q(&[("name", "p2")])));
        assert!(matches_filters(&port, &q(&[("security_groups", "sg1")])));
        assert!(matches_filters(&port, &q(&[("fixed_ips", "ip_address=10.0.0.3")])));
        assert!(!matches_filters(&port, &q(&[("fixed_ips", "subnet_id=s2")])));
        assert!(matches_filters(&port, &q(&[("fields", "id")])));
    }
}
