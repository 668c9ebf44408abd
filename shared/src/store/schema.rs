//! The table definition, read from `template.yaml` so that the deployed table, the local stack
//! and the tests share one source of truth.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use serde::Deserialize;

/// The SAM template, embedded at build time.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The name of the sparse index listing due work.
pub const DUE_INDEX: &str = "due";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub billing_mode: String,
    pub attribute_definitions: Vec<AttrDef>,
    pub key_schema: Vec<KeyDef>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    pub time_to_live_specification: Option<TtlDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttrDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    pub enabled: bool,
}

/// Extracts `Resources.HandoverTable.Properties` from a template.
pub fn table_definition(template: &str) -> Result<TableDefinition, String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template).map_err(|e| e.to_string())?;
    let props = doc
        .get("Resources")
        .and_then(|r| r.get("HandoverTable"))
        .and_then(|t| t.get("Properties"))
        .ok_or("template has no Resources.HandoverTable.Properties")?;
    serde_yaml_ng::from_value(props.clone()).map_err(|e| format!("HandoverTable.Properties: {e}"))
}

fn key(k: &KeyDef) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(&k.attribute_name)
        .key_type(KeyType::from(k.key_type.as_str()))
        .build()
        .expect("attribute name and key type are set")
}

/// Creates the table (and its TTL) as the template declares it.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), String> {
    let def = table_definition(TEMPLATE)?;
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(def.billing_mode.as_str()));
    for a in &def.attribute_definitions {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for k in &def.key_schema {
        req = req.key_schema(key(k));
    }
    for i in &def.global_secondary_indexes {
        let mut gsi = GlobalSecondaryIndex::builder().index_name(&i.index_name).projection(
            Projection::builder()
                .projection_type(ProjectionType::from(i.projection.projection_type.as_str()))
                .set_non_key_attributes(
                    (!i.projection.non_key_attributes.is_empty()).then(|| i.projection.non_key_attributes.clone()),
                )
                .build(),
        );
        for k in &i.key_schema {
            gsi = gsi.key_schema(key(k));
        }
        req = req.global_secondary_indexes(gsi.build().map_err(|e| e.to_string())?);
    }
    req.send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    if let Some(ttl) = def.time_to_live_specification.filter(|t| t.enabled) {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                    .attribute_name(ttl.attribute_name)
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    }
    Ok(())
}
