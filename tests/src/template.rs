//! `template.yaml` read as JSON, with the lookups the checks of it and the
//! fault layer's IAM check share.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}

/// YAML to JSON, with CloudFormation's short forms spelled out the long
/// way: `!Ref X` is `{"Ref": "X"}`, `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`,
/// `!Sub s` is `{"Fn::Sub": s}`, and so on.
pub fn to_json(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(Value::from))
            .expect("a YAML number is an integer or a float"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            match (name, value) {
                ("Ref", v) => json!({ "Ref": v }),
                ("Condition", v) => json!({ "Condition": v }),
                ("GetAtt", Value::String(s)) => {
                    let (resource, attribute) =
                        s.split_once('.').expect("!GetAtt Resource.Attribute");
                    json!({ "Fn::GetAtt": [resource, attribute] })
                }
                (other, v) => json!({ format!("Fn::{other}"): v }),
            }
        }
    }
}

pub fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

pub fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

/// A number written as a YAML number or a numeric string.
pub fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("expected a number, found {v}"))
}

pub struct Template(pub Value);

/// One `AWS::Serverless::Function`, with Globals applied.
pub struct Function<'a> {
    pub id: &'a str,
    pub resource: &'a Value,
    pub globals: &'a Value,
}

impl<'a> Function<'a> {
    pub fn prop(&self, name: &str) -> Option<&'a Value> {
        self.resource["Properties"]
            .get(name)
            .or_else(|| self.globals.get(name))
    }

    pub fn binary(&self) -> &'a str {
        self.resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no Metadata.BuildProperties.Binary", self.id))
    }

    pub fn env(&self) -> &'a Map<String, Value> {
        self.prop("Environment")
            .and_then(|e| e["Variables"].as_object())
            .unwrap_or_else(|| panic!("{} has no Environment.Variables", self.id))
    }

    pub fn events(&self, kind: &str) -> Vec<(&'a str, &'a Value)> {
        self.resource["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["Type"] == kind)
            .map(|(name, e)| (name.as_str(), &e["Properties"]))
            .collect()
    }
}

impl Template {
    pub fn load() -> Self {
        let path = repo_root().join("template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let yaml: serde_norway::Value =
            serde_norway::from_str(&text).expect("template.yaml is YAML");
        Self(to_json(yaml))
    }

    pub fn resources(&self) -> &Map<String, Value> {
        self.0["Resources"].as_object().expect("Resources")
    }

    pub fn resource(&self, id: &str) -> &Value {
        self.resources()
            .get(id)
            .unwrap_or_else(|| panic!("no resource {id} in template.yaml"))
    }

    pub fn of_type(&self, kind: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .map(|(id, r)| (id.as_str(), r))
            .collect()
    }

    pub fn functions(&self) -> Vec<Function<'_>> {
        self.of_type("AWS::Serverless::Function")
            .into_iter()
            .map(|(id, resource)| Function {
                id,
                resource,
                globals: &self.0["Globals"]["Function"],
            })
            .collect()
    }

    pub fn function(&self, binary: &str) -> Function<'_> {
        let mut found: Vec<_> = self
            .functions()
            .into_iter()
            .filter(|f| f.binary() == binary)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one function builds binary {binary}"
        );
        found.remove(0)
    }

    pub fn parameter(&self, name: &str) -> &Value {
        self.0["Parameters"]
            .get(name)
            .unwrap_or_else(|| panic!("no parameter {name} in template.yaml"))
    }

    /// The parameter a `{"Ref": name}` names, with its default.
    pub fn referenced_parameter<'v>(&self, v: &'v Value) -> (&'v str, u64) {
        let name = v["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("expected !Ref Parameter, found {v}"));
        (name, number(&self.parameter(name)["Default"]))
    }

    /// The logical id of the resource `!Ref id` or `!GetAtt id.Attr` points at.
    pub fn target<'v>(&self, v: &'v Value) -> &'v str {
        let id = v["Ref"]
            .as_str()
            .or_else(|| v["Fn::GetAtt"][0].as_str())
            .unwrap_or_else(|| panic!("expected !Ref or !GetAtt, found {v}"));
        self.resource(id);
        id
    }

    pub fn table_id(&self) -> &str {
        let tables = self.of_type("AWS::DynamoDB::Table");
        assert_eq!(tables.len(), 1, "one DynamoDB table");
        tables[0].0
    }
}

/// What a policy statement's `Resource` names, in words: "table", "index",
/// "queue", "dead-letter queue", "reports queue", "admissions queue", "own log group" or
/// "twilio secret".
pub fn resource_kind(t: &Template, f: &Function, resource: &Value) -> String {
    let table = t.table_id();
    let log_group = t.target(&f.prop("LoggingConfig").expect("LoggingConfig")["LogGroup"]);
    let sender = t.function("sender");
    let (_, source) = sender.events("SQS")[0];
    let queue = t.target(&source["Queue"]);
    let dlq = t.target(&t.resource(queue)["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]);
    let consumer = t.function("delivery-reports");
    let (_, source) = consumer.events("SQS")[0];
    let reports = t.target(&source["Queue"]);
    let admitter = t.function("admit");
    let (_, source) = admitter.events("SQS")[0];
    let admissions = t.target(&source["Queue"]);
    let candidates = [
        ("table", get_att(table, "Arn")),
        (
            "index",
            json!({"Fn::Sub": format!("${{{table}.Arn}}/index/*")}),
        ),
        ("queue", get_att(queue, "Arn")),
        ("dead-letter queue", get_att(dlq, "Arn")),
        ("reports queue", get_att(reports, "Arn")),
        ("admissions queue", get_att(admissions, "Arn")),
        ("own log group", get_att(log_group, "Arn")),
        (
            "twilio secret",
            json!({"Fn::If": ["CreateTwilioSecret", reference("TwilioSecret"), reference("TwilioSecretArn")]}),
        ),
    ];
    candidates
        .iter()
        .find(|(_, v)| v == resource)
        .map(|(kind, _)| (*kind).to_owned())
        .unwrap_or_else(|| panic!("{}: unexpected resource {resource}", f.id))
}

impl Template {
    /// What a function's role allows, as (action, resource kind) pairs.
    pub fn granted(&self, f: &Function) -> BTreeSet<(String, String)> {
        let role_id = self.target(f.prop("Role").expect("each function has its own role"));
        let role = &self.resource(role_id)["Properties"];
        let mut granted = BTreeSet::new();
        for policy in role["Policies"].as_array().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if statement["Effect"] != "Allow" {
                    continue;
                }
                let actions = match &statement["Action"] {
                    Value::Array(a) => a.clone(),
                    one => vec![one.clone()],
                };
                let kind = resource_kind(self, f, &statement["Resource"]);
                for action in actions {
                    granted.insert((action.as_str().unwrap_or_default().to_owned(), kind.clone()));
                }
            }
        }
        granted
    }

    /// Each function's grants, by binary name.
    pub fn grants(&self) -> std::collections::BTreeMap<String, BTreeSet<(String, String)>> {
        self.functions()
            .iter()
            .map(|f| (f.binary().to_owned(), self.granted(f)))
            .collect()
    }
}
