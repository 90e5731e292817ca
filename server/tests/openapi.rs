//! The OpenAPI document (`server/openapi.json`) against the server itself: it
//! documents exactly the routes in [`server::http::ROUTES`], every operation
//! has a summary, the routes behind the `Caller` extractor (and only they)
//! declare bearerAuth and a 401, every `$ref` resolves, and a real server
//! answers every documented route with a status the document lists, never 405
//! (nor 404 where the path has no parameters). Signed-in calls check that the
//! bodies the handlers really send match the documented schemas.

mod common;

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail, ensure};
use common::{Backend, TestServer};
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

const SPEC: &str = include_str!("../openapi.json");

/// The routes that take no `Caller`: no bearer token is needed.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/metrics",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    // Signs in with its first WebSocket message: browsers cannot set headers there.
    "/api/v1/sync",
];

/// The keys of a path item that are operations.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec() -> Result<Value> {
    serde_json::from_str(SPEC).context("server/openapi.json is not valid JSON")
}

/// One documented operation.
struct Op<'a> {
    method: String,
    path: String,
    op: &'a Map<String, Value>,
}

impl Op<'_> {
    fn bearer(&self) -> bool {
        self.op
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|reqs| reqs.iter().any(|r| r.get("bearerAuth").is_some()))
    }

    fn has_body(&self) -> bool {
        self.op.contains_key("requestBody")
    }

    fn documents(&self, status: StatusCode) -> bool {
        self.op
            .get("responses")
            .and_then(|r| r.get(status.as_str()))
            .is_some()
    }
}

/// Every operation of the document.
fn operations(spec: &Value) -> Result<Vec<Op<'_>>> {
    let paths = spec
        .get("paths")
        .and_then(Value::as_object)
        .context("the document has no paths object")?;
    let mut out = Vec::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .with_context(|| format!("{path}: not an object"))?;
        for (method, op) in item {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let op = op
                .as_object()
                .with_context(|| format!("{method} {path}: not an object"))?;
            out.push(Op {
                method: method.clone(),
                path: path.clone(),
                op,
            });
        }
    }
    Ok(out)
}

fn find<'a>(ops: &'a [Op<'a>], method: &str, path: &str) -> Result<&'a Op<'a>> {
    ops.iter()
        .find(|o| o.method == method && o.path == path)
        .with_context(|| format!("{method} {path} is not documented"))
}

/// The `{name}` placeholders of a path pattern.
fn placeholders(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Resolves a local `$ref` (or returns the value itself when it is none).
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> Result<&'a Value> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|p| spec.pointer(p))
            .with_context(|| format!("unresolved $ref {r}")),
        None => Ok(value),
    }
}

#[test]
fn documented_routes_are_the_real_routes() -> Result<()> {
    let spec = spec()?;
    let documented: BTreeSet<(String, String)> = operations(&spec)?
        .into_iter()
        .map(|o| (o.method, o.path))
        .collect();
    let real: BTreeSet<(String, String)> = server::http::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let show = |set: Vec<&(String, String)>| {
        if set.is_empty() {
            return "  (none)".to_owned();
        }
        set.iter()
            .map(|(m, p)| format!("  {} {p}", m.to_uppercase()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let undocumented: Vec<_> = real.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&real).collect();
    ensure!(
        undocumented.is_empty() && phantom.is_empty(),
        "server/openapi.json does not match server::http::ROUTES.\n\
         Routes the server has but the document lacks:\n{}\n\
         Operations the document has but the server lacks:\n{}",
        show(undocumented),
        show(phantom)
    );
    Ok(())
}

#[test]
fn every_operation_is_summarised_and_secured() -> Result<()> {
    let spec = spec()?;
    ensure!(
        spec.pointer("/components/securitySchemes/bearerAuth/scheme") == Some(&json!("bearer"))
            && spec.pointer("/components/securitySchemes/bearerAuth/bearerFormat")
                == Some(&json!("JWT")),
        "components/securitySchemes/bearerAuth must be an HTTP bearer scheme with bearerFormat JWT"
    );
    ensure!(
        spec.pointer("/components/schemas/Error").is_some(),
        "components/schemas/Error is missing"
    );
    let mut problems = Vec::new();
    for o in operations(&spec)? {
        let name = format!("{} {}", o.method.to_uppercase(), o.path);
        let summary = o.op.get("summary").and_then(Value::as_str);
        if summary.is_none_or(|s| s.trim().is_empty()) {
            problems.push(format!("{name}: no summary"));
        }
        let public = PUBLIC.contains(&o.path.as_str());
        if public && o.bearer() {
            problems.push(format!("{name}: takes no Caller, yet declares bearerAuth"));
        }
        if !public && !o.bearer() {
            problems.push(format!("{name}: takes a Caller but lacks bearerAuth"));
        }
        if !public && !o.documents(StatusCode::UNAUTHORIZED) {
            problems.push(format!("{name}: takes a Caller but documents no 401"));
        }
        let declared: BTreeSet<String> =
            o.op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p.get("in") == Some(&json!("path")))
                .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect();
        if declared != placeholders(&o.path) {
            problems.push(format!(
                "{name}: path parameters {declared:?} do not match the path"
            ));
        }
    }
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    for r in refs {
        if r.strip_prefix('#').and_then(|p| spec.pointer(p)).is_none() {
            problems.push(format!("unresolved $ref {r}"));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// A plausible value for a path parameter.
fn sample(param: &str) -> &'static str {
    match param {
        "unit" => "DEMO-I",
        "username" => "k.iyer",
        "code" => "P04",
        "device" => "0123456789abcdef0123456789abcdef",
        _ => "0190f5a2-7c1e-7d3a-9b1c-2f4e6a8b0c1d",
    }
}

fn fill(path: &str) -> String {
    placeholders(path).iter().fold(path.to_owned(), |p, name| {
        p.replace(&format!("{{{name}}}"), sample(name))
    })
}

fn method_of(name: &str) -> Result<Method> {
    Method::from_bytes(name.to_uppercase().as_bytes()).with_context(|| format!("method {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_answers() -> Result<()> {
    let spec = spec()?;
    let ops = operations(&spec)?;
    let server = TestServer::start(Backend::Sqlite).await?;
    let mut problems = Vec::new();
    for o in &ops {
        let path = fill(&o.path);
        let body = o.has_body().then(|| json!({}));
        let (status, answer) = server
            .call(method_of(&o.method)?, &path, None, body)
            .await?;
        let name = format!("{} {path}", o.method.to_uppercase());
        if status == StatusCode::METHOD_NOT_ALLOWED {
            problems.push(format!("{name}: 405, the route does not exist"));
        }
        if status == StatusCode::NOT_FOUND && placeholders(&o.path).is_empty() {
            problems.push(format!("{name}: 404, the route does not exist"));
        }
        // The `Caller` extractor runs before the path and body are read.
        if o.bearer() != (status == StatusCode::UNAUTHORIZED) {
            problems.push(format!(
                "{name}: {status} without credentials, but bearerAuth is {}declared",
                if o.bearer() { "" } else { "not " }
            ));
        }
        if !o.documents(status) {
            problems.push(format!("{name}: {status} is not documented ({answer})"));
        }
    }
    server.stop().await;
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Checks `value` against a JSON Schema subset (`$ref`, `oneOf`, `allOf`,
/// `type`, `const`, `enum`, lengths, `properties`, `required`,
/// `additionalProperties`, `propertyNames`, `items`, `prefixItems`). Response
/// objects are closed: a property the schema does not name is an error, so a
/// field a handler adds without documenting it is caught.
fn check(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        match r.strip_prefix('#').and_then(|p| spec.pointer(p)) {
            Some(target) => check(spec, target, value, at, errors),
            None => errors.push(format!("{at}: unresolved $ref {r}")),
        }
    }
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = alternatives
            .iter()
            .filter(|alt| {
                let mut e = Vec::new();
                check(spec, alt, value, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!(
                "{at}: {value} matches {matching} of the oneOf alternatives"
            ));
        }
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(spec, part, value, at, errors);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = |t: &str| match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            errors.push(format!("{at}: expected {types:?}, found {value}"));
            return;
        }
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        errors.push(format!("{at}: expected {c}, found {value}"));
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {choices:?}"));
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| len < min)
            || schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|max| len > max)
        {
            errors.push(format!("{at}: {value} has the wrong length"));
        }
    }
    if let Some(fields) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !fields.contains_key(name) {
                errors.push(format!("{at}: the required field {name} is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let names_properties = properties.is_some() || schema.get("additionalProperties").is_some();
        for (name, field) in fields {
            let here = format!("{at}.{name}");
            if let Some(names) = schema.get("propertyNames") {
                check(spec, names, &Value::String(name.clone()), &here, errors);
            }
            match (
                properties.and_then(|p| p.get(name)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => check(spec, s, field, &here, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{here}: not allowed by the schema"));
                }
                (None, Some(s @ Value::Object(_))) => check(spec, s, field, &here, errors),
                (None, _) if names_properties => {
                    errors.push(format!("{here}: sent but not documented"));
                }
                (None, _) => {}
            }
        }
    }
    if let Some(items) = value.as_array() {
        let prefix = schema
            .get("prefixItems")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (i, item) in items.iter().enumerate() {
            let here = format!("{at}[{i}]");
            match (prefix.get(i), schema.get("items")) {
                (Some(s), _) => check(spec, s, item, &here, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{here}: no item is allowed here"));
                }
                (None, Some(s)) => check(spec, s, item, &here, errors),
                (None, None) => {}
            }
        }
        let len = items.len() as u64;
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|min| len < min)
            || schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|max| len > max)
        {
            errors.push(format!("{at}: {len} items is the wrong count"));
        }
    }
}

/// Checks that `status` is documented for the operation and `body` matches its schema.
fn conforms(
    spec: &Value,
    method: &str,
    path: &str,
    status: StatusCode,
    body: &Value,
) -> Result<()> {
    let ops = operations(spec)?;
    let op = find(&ops, method, path)?;
    let response = op
        .op
        .get("responses")
        .and_then(|r| r.get(status.as_str()))
        .with_context(|| format!("{method} {path}: {status} is not documented ({body})"))?;
    let response = resolve(spec, response)?;
    match response.pointer("/content/application~1json/schema") {
        Some(schema) => {
            let mut errors = Vec::new();
            check(spec, schema, body, "body", &mut errors);
            ensure!(
                errors.is_empty(),
                "{method} {path} answered {status} with a body unlike the document:\n{}\n{body}",
                errors.join("\n")
            );
        }
        None if response.get("content").is_none() => {
            ensure!(
                body.is_null(),
                "{method} {path}: {status} documents no body, but one came: {body}"
            );
        }
        None => {}
    }
    Ok(())
}

const OK: StatusCode = StatusCode::OK;
const CREATED: StatusCode = StatusCode::CREATED;
const NO_CONTENT: StatusCode = StatusCode::NO_CONTENT;
const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;
const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

/// The documented path pattern a concrete path (query string aside) falls under.
fn pattern_of(spec: &Value, method: &str, path: &str) -> Result<String> {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    operations(spec)?
        .into_iter()
        .filter(|o| o.method == method)
        .map(|o| o.path)
        .find(|pattern| {
            let parts: Vec<&str> = pattern.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(p, s)| {
                    p == s || (p.starts_with('{') && p.ends_with('}') && !s.is_empty())
                })
        })
        .with_context(|| format!("no documented operation for {method} {path}"))
}

/// A client, signed in or not, that checks every answer against the document.
struct Api<'a> {
    server: &'a TestServer,
    spec: &'a Value,
    token: Option<String>,
}

impl<'a> Api<'a> {
    fn new(server: &'a TestServer, spec: &'a Value, token: Option<&str>) -> Api<'a> {
        Api {
            server,
            spec,
            token: token.map(str::to_owned),
        }
    }

    /// Sends `method` to `path` and checks that the answer is `expect` with
    /// a body as the document describes it.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        expect: StatusCode,
    ) -> Result<Value> {
        let token = self.token.as_deref();
        let (status, answer) = self
            .server
            .call(method_of(method)?, path, token, body)
            .await?;
        if status != expect {
            bail!("{method} {path}: expected {expect}, got {status}: {answer}");
        }
        let pattern = pattern_of(self.spec, method, path)?;
        conforms(self.spec, method, &pattern, status, &answer)?;
        Ok(answer)
    }
}

/// Checks that a refusal's message names the field at fault.
fn names_field(answer: &Value, field: &str) -> Result<()> {
    ensure!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains(field)),
        "the refusal does not name {field}: {answer}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_the_documented_schemas() -> Result<()> {
    let spec = spec()?;
    let server = TestServer::start(Backend::Sqlite).await?;
    let result = signed_in_calls(&server, &spec).await;
    server.stop().await;
    result
}

async fn signed_in_calls(server: &TestServer, spec: &Value) -> Result<()> {
    let anyone = Api::new(server, spec, None);
    anyone.call("get", "/healthz", None, OK).await?;

    let login = "/api/v1/auth/login";
    let creds = json!({ "username": "a.rao", "password": common::PASSWORD });
    let tokens = anyone.call("post", login, Some(creds.clone()), OK).await?;
    let access = tokens["access_token"].as_str().context("access_token")?;
    let wrong = json!({ "username": "a.rao", "password": "not the password" });
    anyone
        .call("post", login, Some(wrong), UNAUTHORIZED)
        .await?;
    anyone
        .call("post", login, Some(json!({})), UNPROCESSABLE)
        .await?;

    let rao = Api::new(server, spec, Some(access));
    rao.call("get", "/api/v1/me", None, OK).await?;
    let forged = Api::new(server, spec, Some("not.a.token"));
    forged.call("get", "/api/v1/me", None, UNAUTHORIZED).await?;

    devices(&rao, access).await?;

    let url = format!("{}/api/v1/reference", server.base);
    rao.call("get", "/api/v1/reference", None, OK).await?;
    let first = server.client.get(&url).bearer_auth(access).send().await?;
    let etag = first.headers().get(ETAG).context("no ETag")?.clone();
    let again = server.client.get(&url).bearer_auth(access);
    let again = again.header(IF_NONE_MATCH, etag).send().await?;
    let status = again.status();
    ensure!(
        status == StatusCode::NOT_MODIFIED,
        "If-None-Match: {status}"
    );
    ensure!(again.text().await?.is_empty(), "a 304 with a body");
    conforms(spec, "get", "/api/v1/reference", status, &Value::Null)?;

    let found = rao.call("get", "/api/v1/search?q=NC-0", None, OK).await?;
    ensure!(
        found["results"].as_array().is_some_and(|r| !r.is_empty()),
        "the demo's NCs are found: {found}"
    );
    rao.call("get", "/api/v1/search", None, BAD_REQUEST).await?;
    rao.call("get", "/api/v1/admin/users?unit=DEMO-I", None, OK)
        .await?;
    let ageing = "/api/v1/reports/units/DEMO-I/nc-ageing";
    rao.call("get", &format!("{ageing}?as_of=2026-01-15"), None, OK)
        .await?;
    rao.call("get", &format!("{ageing}?format=pdf"), None, UNPROCESSABLE)
        .await?;
    let held = "/api/v1/reports/units/DEMO-I/quarantine";
    rao.call("get", held, None, OK).await?;
    rao.call("get", &format!("{held}?process=P03"), None, BAD_REQUEST)
        .await?;
    rao.call(
        "get",
        "/api/v1/reports/units/DEMO-I/programme-adherence?as_of=2026-01-15",
        None,
        OK,
    )
    .await?;
    rao.call("get", "/api/v1/admin/users?unit=demo", None, UNPROCESSABLE)
        .await?;
    rao.call("get", "/api/v1/admin/users", None, BAD_REQUEST)
        .await?;
    for kind in ["roles", "processes", "audits"] {
        let path = format!("/api/v1/admin/units/DEMO-I/{kind}");
        rao.call("get", &path, None, OK).await?;
        let bad = format!("/api/v1/admin/units/demo/{kind}");
        rao.call("get", &bad, None, UNPROCESSABLE).await?;
        let above = format!("/api/v1/admin/units/CBIC/{kind}");
        rao.call("get", &above, None, FORBIDDEN).await?;
    }

    // k.iyer leads audits: their bundle holds team places and audits.
    let lead = server.login("k.iyer").await?;
    let iyer = Api::new(server, spec, Some(&lead));
    let bundle = iyer.call("get", "/api/v1/reference", None, OK).await?;
    ensure!(
        bundle["audits"].as_array().is_some_and(|a| !a.is_empty()),
        "k.iyer's bundle has no audits: {bundle}"
    );
    let template = bundle["templates"][0]["version"].clone();
    administration(&rao, template).await?;

    // Checklist versions and the amendments they implement.
    let token = server.login("sqm.admin").await?;
    let admin = Api::new(server, spec, Some(&token));
    let v3 = include_str!("../../templates/sqm-03-v2.json")
        .replacen("\"version\": 2", "\"version\": 3", 1)
        .replacen("\"id\": \"A-01\"", "\"id\": \"A-02\"", 1);
    let file: Value = serde_json::from_str(&v3)?;
    let templates = "/api/v1/admin/templates";
    admin
        .call("post", templates, Some(file.clone()), CREATED)
        .await?;
    admin.call("post", templates, Some(file), CONFLICT).await?;
    let broken = json!({ "version": 4 });
    admin
        .call("post", templates, Some(broken), UNPROCESSABLE)
        .await?;
    rao.call("get", "/api/v1/admin/amendments", None, OK)
        .await?;
    let ack = "/api/v1/admin/units/DEMO-I/amendments/A-02/ack";
    rao.call("post", ack, None, CREATED).await?;
    rao.call("post", ack, None, CONFLICT).await?;
    let unknown = "/api/v1/admin/units/DEMO-I/amendments/A-99/ack";
    rao.call("post", unknown, None, NOT_FOUND).await?;

    let refresh = "/api/v1/auth/refresh";
    let old = json!({ "refresh_token": tokens["refresh_token"] });
    anyone.call("post", refresh, Some(old.clone()), OK).await?;
    anyone
        .call("post", refresh, Some(old), UNAUTHORIZED)
        .await?;
    // The reuse ended the session: its access token no longer works.
    rao.call("get", "/api/v1/me", None, UNAUTHORIZED).await?;

    let tokens = anyone.call("post", login, Some(creds), OK).await?;
    let access = tokens["access_token"].as_str().context("access_token")?;
    let rao = Api::new(server, spec, Some(access));
    rao.call("post", "/api/v1/auth/logout", None, NO_CONTENT)
        .await?;
    rao.call("get", "/api/v1/me", None, UNAUTHORIZED).await?;
    Ok(())
}

/// Registering a device, binding an actor id, listing and revoking.
async fn devices(rao: &Api<'_>, access: &str) -> Result<()> {
    let devices = "/api/v1/devices";
    let tablet = json!({ "name": "Rao tablet" });
    let device = rao.call("post", devices, Some(tablet), CREATED).await?;
    let id = device["device_id"].as_str().context("device_id")?;
    let extra = json!({ "name": "Rao tablet", "colour": "blue" });
    let refused = rao
        .call("post", devices, Some(extra), UNPROCESSABLE)
        .await?;
    names_field(&refused, "colour")?;
    let blank = json!({ "name": "  " });
    rao.call("post", devices, Some(blank), UNPROCESSABLE)
        .await?;

    let server = rao.server;
    let malformed = server.client.post(format!("{}{devices}", server.base));
    let malformed = malformed
        .bearer_auth(access)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await?;
    let status = malformed.status();
    ensure!(status == BAD_REQUEST, "malformed JSON: {status}");
    let body: Value = malformed.json().await?;
    conforms(rao.spec, "post", devices, status, &body)?;

    let actors = format!("/api/v1/devices/{id}/actors");
    rao.call("post", &actors, None, CREATED).await?;
    let nobody = "/api/v1/devices/0123456789abcdef0123456789abcdef/actors";
    rao.call("post", nobody, None, NOT_FOUND).await?;
    let list = rao.call("get", devices, None, OK).await?;
    ensure!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|d| d["id"].as_str() == Some(id))),
        "the new device is not listed: {list}"
    );

    let device = format!("/api/v1/devices/{id}");
    rao.call("delete", &device, None, NO_CONTENT).await?;
    rao.call("delete", &device, None, NOT_FOUND).await?;
    rao.call("post", &actors, None, FORBIDDEN).await?;
    Ok(())
}

/// The administration calls that change things, as a nodal officer of DEMO-I.
async fn administration(rao: &Api<'_>, template: Value) -> Result<()> {
    let users = "/api/v1/admin/users";
    let account = json!({
        "username": "t.new",
        "display_name": "T. New",
        "designation": "Inspector",
        "password": "long enough password",
    });
    rao.call("post", users, Some(account.clone()), CREATED)
        .await?;
    rao.call("post", users, Some(account), CONFLICT).await?;
    let bad = json!({
        "username": "T New",
        "display_name": "T. New",
        "password": "long enough password",
    });
    rao.call("post", users, Some(bad), UNPROCESSABLE).await?;

    let roles = "/api/v1/admin/units/DEMO-I/roles";
    let auditor = json!({
        "username": "t.new",
        "role": "auditor",
        "valid_from": "2020-01-01",
        "valid_until": null,
        "office_order": "OO 1/2025 dated 01-01-2020",
    });
    let assignment = rao.call("post", roles, Some(auditor), CREATED).await?;
    let admin = json!({
        "username": "t.new",
        "role": "admin",
        "valid_from": "2020-01-01",
        "office_order": "OO 2/2025",
    });
    rao.call("post", roles, Some(admin), FORBIDDEN).await?;

    let process = "/api/v1/admin/units/DEMO-I/processes/P99";
    let body = json!({ "clause": "3.2.1.9", "name": "Test process", "owner": "t.new" });
    rao.call("put", process, Some(body.clone()), CREATED)
        .await?;
    rao.call("put", process, Some(body), OK).await?;
    let body = json!({ "clause": "3.x", "name": "Test process", "owner": "t.new" });
    rao.call("put", process, Some(body), UNPROCESSABLE).await?;

    let audits = "/api/v1/admin/units/DEMO-I/audits";
    let audit = json!({
        "number": "IA/DEMO-I/TEST/001",
        "scope": ["P04", "3.4"],
        "planned_from": "2026-03-01",
        "planned_to": "2026-03-02",
        "template_version": template,
        "lead": "t.new",
        "members": ["k.iyer"],
    });
    let mut unknown = audit.clone();
    unknown["bogus"] = json!(1);
    let refused = rao
        .call("post", audits, Some(unknown), UNPROCESSABLE)
        .await?;
    names_field(&refused, "bogus")?;
    let planned = rao
        .call("post", audits, Some(audit.clone()), CREATED)
        .await?;
    rao.call("post", audits, Some(audit), CONFLICT).await?;

    let id = planned["id"].as_str().context("audit id")?;
    let team = format!("{audits}/{id}/team");
    let lead = json!({ "lead": "k.iyer" });
    rao.call("put", &team, Some(lead.clone()), OK).await?;
    let twice = json!({ "lead": "k.iyer", "members": ["k.iyer"] });
    rao.call("put", &team, Some(twice), UNPROCESSABLE).await?;
    let nowhere = format!("{audits}/0190f5a2-7c1e-7d3a-9b1c-2f4e6a8b0c1d/team");
    rao.call("put", &nowhere, Some(lead), NOT_FOUND).await?;

    let programmes = "/api/v1/admin/units/DEMO-I/programmes";
    let listed = rao.call("get", programmes, None, OK).await?;
    ensure!(
        listed.as_array().is_some_and(|p| p.len() == 1),
        "the demo's programme: {listed}"
    );
    let next = json!({ "fy": "2026-27", "cycles": 2, "scope": ["P01", "P02", "3.4"] });
    let made = rao
        .call("post", programmes, Some(next.clone()), CREATED)
        .await?;
    ensure!(made["approved_on"].is_null(), "{made}");
    rao.call("post", programmes, Some(next), CONFLICT).await?;
    let wrong_year = json!({ "fy": "2026-28", "cycles": 2, "scope": ["P01"] });
    rao.call("post", programmes, Some(wrong_year), UNPROCESSABLE)
        .await?;
    let approve = format!(
        "{programmes}/{}/approve",
        made["id"].as_str().context("programme id")?
    );
    let approved = rao.call("post", &approve, None, OK).await?;
    ensure!(approved["approved_by"] == "a.rao", "{approved}");
    rao.call("post", &approve, None, CONFLICT).await?;
    let nowhere = format!("{programmes}/no-such-programme/approve");
    rao.call("post", &nowhere, None, NOT_FOUND).await?;

    let password = "/api/v1/admin/users/t.new/password";
    let new = json!({ "password": "another long password" });
    rao.call("put", password, Some(new), NO_CONTENT).await?;
    let short = json!({ "password": "short" });
    rao.call("put", password, Some(short), UNPROCESSABLE)
        .await?;
    let account = "/api/v1/admin/users/t.new";
    let devices = rao
        .call("get", &format!("{account}/devices"), None, OK)
        .await?;
    ensure!(devices == json!([]), "t.new has no devices: {devices}");
    let nowhere = format!("{account}/devices/0123456789abcdef0123456789abcdef");
    rao.call("delete", &nowhere, None, NOT_FOUND).await?;
    rao.call("delete", &format!("{account}/sessions"), None, NO_CONTENT)
        .await?;
    let admin = "/api/v1/admin/users/sqm.admin/sessions";
    rao.call("delete", admin, None, FORBIDDEN).await?;
    let disable = "/api/v1/admin/users/t.new/disable";
    rao.call("post", disable, None, NO_CONTENT).await?;
    let enable = "/api/v1/admin/users/t.new/enable";
    rao.call("post", enable, None, NO_CONTENT).await?;
    let own = "/api/v1/admin/users/a.rao/disable";
    rao.call("post", own, None, CONFLICT).await?;
    let ghost = "/api/v1/admin/users/no.one/enable";
    rao.call("post", ghost, None, NOT_FOUND).await?;

    let id = assignment["id"].as_str().context("assignment id")?;
    rao.call("delete", &format!("{roles}/{id}"), None, NO_CONTENT)
        .await?;
    rao.call("delete", &format!("{roles}/none"), None, NOT_FOUND)
        .await?;
    Ok(())
}
