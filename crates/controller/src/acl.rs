//! Access control lists as the metadata quorum stores them (Kafka's `AclBinding`), and
//! Kafka's binding filters (`AclBindingFilter`) that DescribeAcls and DeleteAcls select
//! them with.
//!
//! The enums carry Kafka's wire codes (`code`, `from_code`); the catch-all values of the
//! wire (`ANY`, `MATCH`, `UNKNOWN`) exist only in filters, never in a stored binding.

use serde::{Deserialize, Serialize};

/// Kafka's wildcard resource name: a LITERAL binding on `*` covers every resource of its
/// type.
pub const WILDCARD_RESOURCE: &str = "*";
/// Kafka's wildcard principal: a binding for `User:*` applies to every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// Kafka's wildcard host: a binding for `*` applies from every address.
pub const WILDCARD_HOST: &str = "*";
/// The one name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// A resource type a binding can name (Kafka's `ResourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    /// TOPIC (2).
    Topic,
    /// GROUP (3).
    Group,
    /// CLUSTER (4), named [`CLUSTER_NAME`].
    Cluster,
    /// TRANSACTIONAL_ID (5).
    TransactionalId,
    /// DELEGATION_TOKEN (6).
    DelegationToken,
    /// USER (7).
    User,
}

impl ResourceType {
    /// Every type, in wire-code order.
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }

    /// The type of wire code `code`; `None` for ANY (1), UNKNOWN (0) and unknown codes.
    pub fn from_code(code: i8) -> Option<ResourceType> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Kafka's name (`TOPIC`, `TRANSACTIONAL_ID`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }
}

/// How a binding's resource name matches (Kafka's `PatternType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// LITERAL (3): the name itself, or every resource when the name is `*`.
    Literal,
    /// PREFIXED (4): every resource whose name starts with the name.
    Prefixed,
}

impl PatternType {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

/// An operation a binding allows or denies (Kafka's `AclOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclOperation {
    /// ALL (2): every operation.
    All,
    /// READ (3).
    Read,
    /// WRITE (4).
    Write,
    /// CREATE (5).
    Create,
    /// DELETE (6).
    Delete,
    /// ALTER (7).
    Alter,
    /// DESCRIBE (8).
    Describe,
    /// CLUSTER_ACTION (9).
    ClusterAction,
    /// DESCRIBE_CONFIGS (10).
    DescribeConfigs,
    /// ALTER_CONFIGS (11).
    AlterConfigs,
    /// IDEMPOTENT_WRITE (12).
    IdempotentWrite,
    /// CREATE_TOKENS (13).
    CreateTokens,
    /// DESCRIBE_TOKENS (14).
    DescribeTokens,
}

impl AclOperation {
    /// Every operation, in wire-code order.
    pub const ALL: [AclOperation; 13] = [
        AclOperation::All,
        AclOperation::Read,
        AclOperation::Write,
        AclOperation::Create,
        AclOperation::Delete,
        AclOperation::Alter,
        AclOperation::Describe,
        AclOperation::ClusterAction,
        AclOperation::DescribeConfigs,
        AclOperation::AlterConfigs,
        AclOperation::IdempotentWrite,
        AclOperation::CreateTokens,
        AclOperation::DescribeTokens,
    ];

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
            AclOperation::CreateTokens => 13,
            AclOperation::DescribeTokens => 14,
        }
    }

    /// The operation of wire code `code`; `None` for ANY (1), UNKNOWN (0) and unknown codes.
    pub fn from_code(code: i8) -> Option<AclOperation> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }

    /// Kafka's name (`READ`, `DESCRIBE_CONFIGS`).
    pub fn name(self) -> &'static str {
        match self {
            AclOperation::All => "ALL",
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::ClusterAction => "CLUSTER_ACTION",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
            AclOperation::CreateTokens => "CREATE_TOKENS",
            AclOperation::DescribeTokens => "DESCRIBE_TOKENS",
        }
    }

    /// The operation named `name` (Kafka's names, any case, `-` or `_` between words, as
    /// kafka-acls.sh's `--operation` takes them: `Read`, `DescribeConfigs`, `describe_configs`).
    pub fn parse(name: &str) -> Option<AclOperation> {
        let squash = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
        let wanted = squash(name);
        Self::ALL.into_iter().find(|o| squash(o.name()) == wanted)
    }
}

/// Whether a binding allows or denies (Kafka's `AclPermissionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclPermission {
    /// DENY (2): wins over every ALLOW.
    Deny,
    /// ALLOW (3).
    Allow,
}

impl AclPermission {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            AclPermission::Deny => 2,
            AclPermission::Allow => 3,
        }
    }

    /// The permission of wire code `code`; `None` for ANY (1), UNKNOWN (0) and others.
    pub fn from_code(code: i8) -> Option<AclPermission> {
        match code {
            2 => Some(AclPermission::Deny),
            3 => Some(AclPermission::Allow),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            AclPermission::Deny => "DENY",
            AclPermission::Allow => "ALLOW",
        }
    }
}

/// One stored ACL (Kafka's `AclBinding`: a resource pattern and an access control entry).
/// Ordered by resource first, so the bindings of one resource pattern are adjacent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: ResourceType,
    /// How `resource_name` matches.
    pub pattern_type: PatternType,
    /// The resource name or prefix (non-empty; `*` for every resource with LITERAL).
    pub resource_name: String,
    /// `Type:name` (`User:alice`, `User:*`).
    pub principal: String,
    /// An IP address as the client connects from, or `*`.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AclBinding {
    /// Why Kafka would refuse to store this binding, or `None` when it is valid: an empty
    /// resource name, a CLUSTER resource not named `kafka-cluster`, a principal not of the
    /// form `Type:name`, an empty host.
    pub fn invalid_reason(&self) -> Option<String> {
        if self.resource_name.is_empty() {
            return Some("Invalid empty resource name".to_owned());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Some(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Some(format!(
                    "Could not parse principal from `{}` (no colon is found between the principal type and name)",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return Some("Host should not be empty".to_owned());
        }
        None
    }
}

/// Which pattern types a filter selects (Kafka's `PatternType` in a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// ANY (1): every pattern type, the name compared exactly.
    Any,
    /// MATCH (2): every binding that applies to the named resource: the name literally, the
    /// LITERAL `*`, and every PREFIXED pattern the name starts with.
    Match,
    /// LITERAL or PREFIXED: only that type, the name compared exactly.
    Exactly(PatternType),
}

impl PatternFilter {
    /// The filter of wire code `code`; `None` for UNKNOWN (0) and unknown codes.
    pub fn from_code(code: i8) -> Option<PatternFilter> {
        match code {
            1 => Some(PatternFilter::Any),
            2 => Some(PatternFilter::Match),
            3 => Some(PatternFilter::Exactly(PatternType::Literal)),
            4 => Some(PatternFilter::Exactly(PatternType::Prefixed)),
            _ => None,
        }
    }
}

/// Kafka's `AclBindingFilter`: `None` in a field matches any value (the wire's null or ANY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type, or any.
    pub resource_type: Option<ResourceType>,
    /// The resource name, or any.
    pub resource_name: Option<String>,
    /// Which pattern types, and how the name compares.
    pub pattern: PatternFilter,
    /// The principal, or any.
    pub principal: Option<String>,
    /// The host, or any.
    pub host: Option<String>,
    /// The operation, or any.
    pub operation: Option<AclOperation>,
    /// The permission, or any.
    pub permission: Option<AclPermission>,
}

impl AclFilter {
    /// Whether `binding` is selected, as Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.resource_matches(binding)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }

    fn resource_matches(&self, binding: &AclBinding) -> bool {
        if self
            .resource_type
            .is_some_and(|t| t != binding.resource_type)
        {
            return false;
        }
        if let PatternFilter::Exactly(pattern) = self.pattern {
            if pattern != binding.pattern_type {
                return false;
            }
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        match (self.pattern, binding.pattern_type) {
            (PatternFilter::Match, PatternType::Literal) => {
                *name == binding.resource_name || binding.resource_name == WILDCARD_RESOURCE
            }
            (PatternFilter::Match, PatternType::Prefixed) => {
                name.starts_with(binding.resource_name.as_str())
            }
            _ => *name == binding.resource_name,
        }
    }
}

/// The stored bindings, ordered by resource (structurally shared: copying the image for
/// the next command does not copy them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AclSet(imbl::OrdSet<AclBinding>);

impl AclSet {
    /// Adds `binding`; adding a stored binding again changes nothing.
    pub fn insert(&mut self, binding: AclBinding) {
        self.0.insert(binding);
    }

    /// Removes `binding` if stored.
    pub fn remove(&mut self, binding: &AclBinding) {
        self.0.remove(binding);
    }

    /// Number of stored bindings.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no binding is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every binding, by resource.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.0.iter()
    }

    /// The bindings `filter` selects.
    pub fn select<'a>(&'a self, filter: &'a AclFilter) -> impl Iterator<Item = &'a AclBinding> {
        self.0.iter().filter(|b| filter.matches(b))
    }

    /// The bindings of exactly this resource pattern.
    pub fn of_pattern<'a>(
        &'a self,
        resource_type: ResourceType,
        pattern_type: PatternType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> {
        let first = AclBinding {
            resource_type,
            pattern_type,
            resource_name: name.to_owned(),
            principal: String::new(),
            host: String::new(),
            operation: AclOperation::All,
            permission: AclPermission::Deny,
        };
        self.0.range(first..).take_while(move |b| {
            b.resource_type == resource_type
                && b.pattern_type == pattern_type
                && b.resource_name == name
        })
    }

    /// Every binding that applies to the resource `name` of `resource_type`: LITERAL on
    /// `name`, LITERAL on `*`, and PREFIXED on each prefix of `name` (one range lookup per
    /// prefix, so the cost does not grow with the bindings of other resources).
    pub fn applying_to<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> {
        let literal = self.of_pattern(resource_type, PatternType::Literal, name);
        let wildcard = (name != WILDCARD_RESOURCE)
            .then(|| self.of_pattern(resource_type, PatternType::Literal, WILDCARD_RESOURCE))
            .into_iter()
            .flatten();
        let prefixed = name
            .char_indices()
            .map(|(i, _)| i)
            .skip(1)
            .chain(std::iter::once(name.len()))
            .flat_map(move |end| {
                self.of_pattern(resource_type, PatternType::Prefixed, &name[..end])
            });
        literal.chain(wildcard).chain(prefixed)
    }

    /// Every binding of `resource_type` (for checks on "any resource of the type").
    pub fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &AclBinding> {
        self.0
            .iter()
            .filter(move |b| b.resource_type == resource_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(pattern_type: PatternType, name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            pattern_type,
            resource_name: name.to_owned(),
            principal: "User:alice".to_owned(),
            host: "*".to_owned(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }
    }

    fn filter(pattern: PatternFilter, name: Option<&str>) -> AclFilter {
        AclFilter {
            resource_type: Some(ResourceType::Topic),
            resource_name: name.map(str::to_owned),
            pattern,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    #[test]
    fn match_filters_select_what_applies_to_the_resource() {
        let literal = binding(PatternType::Literal, "orders");
        let wildcard = binding(PatternType::Literal, "*");
        let prefixed = binding(PatternType::Prefixed, "ord");
        let other = binding(PatternType::Prefixed, "pay");
        let matching = filter(PatternFilter::Match, Some("orders"));
        assert!(matching.matches(&literal));
        assert!(matching.matches(&wildcard));
        assert!(matching.matches(&prefixed));
        assert!(!matching.matches(&other));
    }

    #[test]
    fn any_and_exact_filters_compare_names_exactly() {
        let prefixed = binding(PatternType::Prefixed, "ord");
        let wildcard = binding(PatternType::Literal, "*");
        assert!(!filter(PatternFilter::Any, Some("orders")).matches(&prefixed));
        assert!(filter(PatternFilter::Any, Some("ord")).matches(&prefixed));
        assert!(!filter(PatternFilter::Any, Some("orders")).matches(&wildcard));
        assert!(
            !filter(PatternFilter::Exactly(PatternType::Literal), Some("ord")).matches(&prefixed)
        );
        assert!(filter(PatternFilter::Exactly(PatternType::Prefixed), None).matches(&prefixed));
        let mut by_principal = filter(PatternFilter::Any, None);
        by_principal.principal = Some("User:bob".to_owned());
        assert!(!by_principal.matches(&prefixed));
        by_principal.resource_type = Some(ResourceType::Group);
        by_principal.principal = None;
        assert!(!by_principal.matches(&prefixed));
    }

    #[test]
    fn applying_to_finds_literal_wildcard_and_every_prefix() {
        let mut set = AclSet::default();
        for (pattern, name) in [
            (PatternType::Literal, "orders"),
            (PatternType::Literal, "*"),
            (PatternType::Literal, "order"),
            (PatternType::Prefixed, "o"),
            (PatternType::Prefixed, "orders"),
            (PatternType::Prefixed, "ordersx"),
            (PatternType::Prefixed, "p"),
        ] {
            set.insert(binding(pattern, name));
        }
        let mut found: Vec<(PatternType, &str)> = set
            .applying_to(ResourceType::Topic, "orders")
            .map(|b| (b.pattern_type, b.resource_name.as_str()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                (PatternType::Literal, "*"),
                (PatternType::Literal, "orders"),
                (PatternType::Prefixed, "o"),
                (PatternType::Prefixed, "orders"),
            ]
        );
        assert_eq!(set.applying_to(ResourceType::Group, "orders").count(), 0);
    }

    #[test]
    fn invalid_bindings_are_named() {
        let mut b = binding(PatternType::Literal, "");
        assert!(b.invalid_reason().is_some());
        b.resource_name = "t".to_owned();
        assert_eq!(b.invalid_reason(), None);
        b.principal = "alice".to_owned();
        assert!(b.invalid_reason().is_some());
        b.principal = "User:alice".to_owned();
        b.resource_type = ResourceType::Cluster;
        assert!(b.invalid_reason().is_some());
        b.resource_name = CLUSTER_NAME.to_owned();
        assert_eq!(b.invalid_reason(), None);
    }

    #[test]
    fn operations_parse_as_kafka_acls_names_them() {
        assert_eq!(AclOperation::parse("Read"), Some(AclOperation::Read));
        assert_eq!(
            AclOperation::parse("DescribeConfigs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            AclOperation::parse("IDEMPOTENT_WRITE"),
            Some(AclOperation::IdempotentWrite)
        );
        assert_eq!(AclOperation::parse("Fly"), None);
        for op in AclOperation::ALL {
            assert_eq!(AclOperation::from_code(op.code()), Some(op));
        }
    }
}
