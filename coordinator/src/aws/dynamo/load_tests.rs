//! Stored load tests (the `tests` table; not unit tests, which live in `tests/`): one item each,
//! keyed by id.
//!
//! Listing reads the whole table (a consistent `Scan`, filtered by tag on the server): a herd
//! deployment keeps tens or hundreds of tests, not millions, so an index would cost more on every
//! write than it saves on the rare listing. The listing is sorted by name here.

use super::items::{
    check_size, condition_failed, get_json, get_n, get_s, json, n, opt_n, opt_s, s, sdk_error, Item,
};
use super::DynamoStore;
use crate::store::{StoreError, TestRecord};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use herd_protocol::RunId;

fn test_item(test: &TestRecord) -> Result<Item, StoreError> {
    let tags = test.tags.iter().map(|t| s(t.as_str())).collect();
    let mut item = Item::from([
        ("id".to_owned(), s(&test.id)),
        ("name".to_owned(), s(&test.name)),
        ("plan".to_owned(), json("plan", &test.plan)?),
        ("tags".to_owned(), AttributeValue::L(tags)),
        ("created_at_ms".to_owned(), n(test.created_at_ms)),
        ("updated_at_ms".to_owned(), n(test.updated_at_ms)),
    ]);
    if let Some(schedule) = &test.schedule {
        item.insert("schedule".to_owned(), json("schedule", schedule)?);
    }
    if let Some(next) = test.next_fire_ms {
        item.insert("next_fire_ms".to_owned(), n(next));
    }
    if let Some(run) = &test.baseline_run {
        item.insert("baseline_run".to_owned(), s(run.as_str()));
    }
    check_size("test (its plan is too large)", &item)?;
    Ok(item)
}

fn test_from_item(item: &Item) -> Result<TestRecord, StoreError> {
    let tags = match item.get("tags") {
        Some(AttributeValue::L(tags)) => tags
            .iter()
            .map(|t| match t {
                AttributeValue::S(t) => Ok(t.clone()),
                _ => Err(super::items::corrupt("tags", "a tag is not a string")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(super::items::corrupt(
                "tags",
                "attribute tags is not a list",
            ))
        }
    };
    Ok(TestRecord {
        id: get_s(item, "id", "test id")?,
        name: get_s(item, "name", "test name")?,
        plan: get_json(item, "plan", "plan")?,
        tags,
        schedule: match item.get("schedule") {
            Some(_) => Some(get_json(item, "schedule", "schedule")?),
            None => None,
        },
        next_fire_ms: opt_n(item, "next_fire_ms", "next fire time")?,
        baseline_run: opt_s(item, "baseline_run", "baseline run")?
            .map(|r| RunId::new(r).map_err(|e| super::items::corrupt("baseline run", e)))
            .transpose()?,
        created_at_ms: get_n(item, "created_at_ms", "creation time")?,
        updated_at_ms: get_n(item, "updated_at_ms", "update time")?,
    })
}

impl DynamoStore {
    /// Writes a test's item if `condition` holds; `Ok(false)` when it does not.
    async fn put_test(&self, test: &TestRecord, condition: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.tests)
            .set_item(Some(test_item(test)?))
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error("PutItem")(e)),
        }
    }

    pub(super) async fn create_test(&self, test: TestRecord) -> Result<(), StoreError> {
        if self.put_test(&test, "attribute_not_exists(id)").await? {
            Ok(())
        } else {
            Err(StoreError::TestExists(test.id))
        }
    }

    pub(super) async fn update_test(&self, test: TestRecord) -> Result<(), StoreError> {
        if self.put_test(&test, "attribute_exists(id)").await? {
            Ok(())
        } else {
            Err(StoreError::UnknownTest(test.id))
        }
    }

    pub(super) async fn delete_test(&self, test: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.tests)
            .key("id", s(test))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error("DeleteItem"))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    pub(super) async fn get_test(&self, test: &str) -> Result<Option<TestRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.tests)
            .key("id", s(test))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("GetItem"))?;
        out.item.as_ref().map(test_from_item).transpose()
    }

    pub(super) async fn list_tests(
        &self,
        tag: Option<String>,
    ) -> Result<Vec<TestRecord>, StoreError> {
        let mut tests = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .scan()
                .table_name(&self.tables.tests)
                .consistent_read(true)
                .set_exclusive_start_key(start);
            if let Some(tag) = &tag {
                request = request
                    .filter_expression("contains(#tags, :tag)")
                    .expression_attribute_names("#tags", "tags")
                    .expression_attribute_values(":tag", s(tag));
            }
            let out = request.send().await.map_err(sdk_error("Scan"))?;
            for item in out.items() {
                tests.push(test_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        tests.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(tests)
    }

    pub(super) async fn set_next_fire(
        &self,
        test: &str,
        next_fire_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.tests)
            .key("id", s(test))
            .condition_expression("attribute_exists(id)")
            .expression_attribute_names("#next", "next_fire_ms");
        request = match next_fire_ms {
            Some(ms) => request
                .update_expression("SET #next = :next")
                .expression_attribute_values(":next", n(ms)),
            None => request.update_expression("REMOVE #next"),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::UnknownTest(test.to_owned())),
            Err(e) => Err(sdk_error("UpdateItem")(e)),
        }
    }
}
