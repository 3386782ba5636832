//! Projects: named topics whose members share memories. A conversation may belong
//! to one project; what is learned there about the project is recalled in every
//! conversation of that project.

use crate::StoreError;
use crate::backend::{on_read, on_write};
use crate::store::{Store, parse_uuid};
use clara_core::{ConversationId, ProjectId};

/// A project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectRecord {
    /// Its id.
    pub id: ProjectId,
    /// Its unique name.
    pub name: String,
}

impl Store {
    /// The project called `name`, created when there is none yet.
    pub async fn ensure_project(
        &self,
        name: &str,
        now_ms: i64,
    ) -> Result<ProjectRecord, StoreError> {
        on_write!(&self.pools, |pool| sqlx::query("INSERT INTO projects (id, name, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(ProjectId::new().to_string())
            .bind(name)
            .bind(now_ms)
            .execute(pool)
            .await
.map(|r| r.rows_affected()))
            .map_err(|e| self.err(e))?;
        self.project_by_name(name)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("project {name:?}")))
    }

    /// The project called `name`, if there is one.
    pub async fn project_by_name(&self, name: &str) -> Result<Option<ProjectRecord>, StoreError> {
        let row: Option<(String, String)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, name FROM projects WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(|(id, name)| {
            Ok(ProjectRecord {
                id: ProjectId(parse_uuid(&id, "projects.id")?),
                name,
            })
        })
        .transpose()
    }

    /// The project a conversation belongs to, if any.
    pub async fn conversation_project(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ProjectId>, StoreError> {
        let row: Option<(Option<String>,)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT project_id FROM conversations WHERE id = $1"
        )
        .bind(conversation.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.and_then(|(p,)| p)
            .map(|p| parse_uuid(&p, "conversations.project_id").map(ProjectId))
            .transpose()
    }

    /// Puts a conversation into a project (or takes it out with `None`).
    pub async fn set_conversation_project(
        &self,
        conversation: ConversationId,
        project: Option<ProjectId>,
    ) -> Result<(), StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE conversations SET project_id = $1 WHERE id = $2"
        )
        .bind(project.map(|p| p.to_string()))
        .bind(conversation.to_string())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        if done == 0 {
            return Err(StoreError::not_found(format!(
                "conversation {conversation}"
            )));
        }
        Ok(())
    }

    /// The project with this id, if it exists.
    pub async fn project(&self, id: ProjectId) -> Result<Option<ProjectRecord>, StoreError> {
        let row: Option<(String,)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT name FROM projects WHERE id = $1"
        )
        .bind(id.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(row.map(|(name,)| ProjectRecord { id, name }))
    }
}
