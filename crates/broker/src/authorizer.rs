//! Kafka's StandardAuthorizer as a pure function: a set of ACLs, the authorizer's settings
//! and one request (principal, client address, operation, resource) give a decision. No
//! I/O: the handlers pass the ACLs of the current metadata image.
//!
//! The rules, as `StandardAuthorizerData`:
//! - a principal listed in `super.users` may do everything;
//! - the bindings that apply to a resource are LITERAL on its name, LITERAL on `*` and
//!   PREFIXED on any prefix of its name; of those, the ones for the principal or `User:*`,
//!   from the client's address or `*`;
//! - a DENY for the operation (or ALL) wins over every ALLOW;
//! - an ALLOW for the operation, or ALL, or one implying it, allows: DESCRIBE is implied by
//!   READ, WRITE, DELETE and ALTER, DESCRIBE_CONFIGS by ALTER_CONFIGS (only ALLOW bindings
//!   imply: DENY READ does not deny DESCRIBE);
//! - a resource no binding applies to (for any principal) is allowed only with
//!   `allow.everyone.if.no.acl.found`.

use std::collections::HashSet;

use controller::acl::{
    AclBinding, AclOperation, AclPermission, AclSet, PatternType, ResourceType, WILDCARD_HOST,
    WILDCARD_PRINCIPAL, WILDCARD_RESOURCE,
};

/// Kafka's StandardAuthorizer class name: the one `authorizer.class.name` Strata serves.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The authorizer's settings (`super.users`, `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
}

/// Who asks: the connection's principal and the address it connects from.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// `User:name`.
    pub principal: &'a str,
    /// The client's IP address, as ACL hosts name it (`127.0.0.1`).
    pub host: &'a str,
}

impl Authorizer {
    /// An authorizer with `super.users` (semicolon-separated `User:name` entries, blanks
    /// ignored) and `allow.everyone.if.no.acl.found`.
    pub fn new(super_users: &str, allow_if_no_acl: bool) -> Authorizer {
        Authorizer {
            super_users: super_users
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            allow_if_no_acl,
        }
    }

    /// Whether `who` may do `operation` on the resource `name` of `resource_type`.
    pub fn authorize(
        &self,
        acls: &AclSet,
        who: Requester<'_>,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.super_users.contains(who.principal) {
            return true;
        }
        let mut any_binding = false;
        let mut allowed = false;
        for binding in acls.applying_to(resource_type, name) {
            any_binding = true;
            match decides(binding, who, operation) {
                Some(AclPermission::Deny) => return false,
                Some(AclPermission::Allow) => allowed = true,
                None => {}
            }
        }
        allowed || (!any_binding && self.allow_if_no_acl)
    }

    /// Whether `who` may do `operation` on at least one resource of `resource_type` (Kafka's
    /// `Authorizer.authorizeByResourceType`, used where Kafka asks "may write to some
    /// topic"): an ALLOW on some name or prefix that no DENY of `who` covers.
    pub fn authorize_any(
        &self,
        acls: &AclSet,
        who: Requester<'_>,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        // As Kafka: a hard-coded name lets super users and allow.everyone.if.no.acl.found
        // through whatever the DENY bindings say.
        if self.authorize(acls, who, operation, resource_type, "hardcode") {
            return true;
        }
        let mut deny_literal = Vec::new();
        let mut deny_prefixed = Vec::new();
        let mut allows = Vec::new();
        for binding in acls.of_type(resource_type) {
            if !applies_to(binding, who) || !covers(binding.operation, operation) {
                continue;
            }
            match (binding.permission, binding.pattern_type) {
                (AclPermission::Deny, PatternType::Literal) => {
                    deny_literal.push(binding.resource_name.as_str())
                }
                (AclPermission::Deny, PatternType::Prefixed) => {
                    deny_prefixed.push(binding.resource_name.as_str())
                }
                (AclPermission::Allow, _) => allows.push(binding),
            }
        }
        if deny_literal.contains(&WILDCARD_RESOURCE) || deny_prefixed.contains(&"") {
            return false;
        }
        allows.iter().any(|allow| {
            let name = allow.resource_name.as_str();
            let prefix_denied = deny_prefixed.iter().any(|p| name.starts_with(p));
            match allow.pattern_type {
                PatternType::Literal => {
                    name == WILDCARD_RESOURCE || (!deny_literal.contains(&name) && !prefix_denied)
                }
                PatternType::Prefixed => !prefix_denied,
            }
        })
    }
}

/// The operations Kafka reports in `authorized_operations` for a resource of
/// `resource_type` (`AclEntry.supportedOperations`).
pub fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation as Op;
    match resource_type {
        ResourceType::Topic => &[
            Op::Read,
            Op::Write,
            Op::Create,
            Op::Describe,
            Op::Delete,
            Op::Alter,
            Op::DescribeConfigs,
            Op::AlterConfigs,
        ],
        ResourceType::Group => &[Op::Read, Op::Describe, Op::Delete],
        ResourceType::Cluster => &[
            Op::Create,
            Op::ClusterAction,
            Op::DescribeConfigs,
            Op::AlterConfigs,
            Op::IdempotentWrite,
            Op::Alter,
            Op::Describe,
        ],
        ResourceType::TransactionalId => &[Op::Describe, Op::Write],
        ResourceType::DelegationToken => &[Op::Describe],
        ResourceType::User => &[Op::CreateTokens, Op::DescribeTokens],
    }
}

/// `operations` as Kafka's 32-bit field: bit `code` set for each.
pub fn operations_bitfield(operations: impl IntoIterator<Item = AclOperation>) -> i32 {
    operations
        .into_iter()
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// Whether `binding` is for `who` (its principal or `User:*`, its address or `*`).
fn applies_to(binding: &AclBinding, who: Requester<'_>) -> bool {
    (binding.principal == who.principal || binding.principal == WILDCARD_PRINCIPAL)
        && (binding.host == WILDCARD_HOST || binding.host == who.host)
}

/// Whether a binding on `granted` speaks about `wanted` at all (ALL, or the same).
fn covers(granted: AclOperation, wanted: AclOperation) -> bool {
    granted == AclOperation::All || granted == wanted
}

/// What `binding` says about `who` doing `operation`, if anything.
fn decides(
    binding: &AclBinding,
    who: Requester<'_>,
    operation: AclOperation,
) -> Option<AclPermission> {
    if !applies_to(binding, who) {
        return None;
    }
    let granted = binding.operation;
    let speaks = covers(granted, operation)
        || (binding.permission == AclPermission::Allow && implies(granted, operation));
    speaks.then_some(binding.permission)
}

/// Kafka's implied operations: READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS
/// implies DESCRIBE_CONFIGS.
fn implies(granted: AclOperation, wanted: AclOperation) -> bool {
    use AclOperation::*;
    match wanted {
        Describe => matches!(granted, Read | Write | Delete | Alter),
        DescribeConfigs => granted == AlterConfigs,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AclOperation::*;
    use AclPermission::*;
    use ResourceType::*;

    const ALICE: Requester<'static> = Requester {
        principal: "User:alice",
        host: "10.0.0.1",
    };
    const BOB: Requester<'static> = Requester {
        principal: "User:bob",
        host: "10.0.0.2",
    };

    fn acl(
        resource_type: ResourceType,
        pattern_type: PatternType,
        name: &str,
        principal: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            pattern_type,
            resource_name: name.to_owned(),
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation,
            permission,
        }
    }

    fn set(bindings: impl IntoIterator<Item = AclBinding>) -> AclSet {
        let mut set = AclSet::default();
        for b in bindings {
            set.insert(b);
        }
        set
    }

    fn allow_read(name: &str) -> AclBinding {
        acl(Topic, PatternType::Literal, name, "User:alice", Read, Allow)
    }

    /// A binding on topic `t` for alice.
    fn on_t(operation: AclOperation, permission: AclPermission) -> AclBinding {
        acl(
            Topic,
            PatternType::Literal,
            "t",
            "User:alice",
            operation,
            permission,
        )
    }

    /// Who asks for what on which resource, and whether Kafka allows it.
    type Case<'a> = (Requester<'a>, AclOperation, ResourceType, &'a str, bool);

    /// Asserts that `auth` answers each of `cases` over `acls` as Kafka does.
    fn check(auth: &Authorizer, acls: &AclSet, cases: &[Case<'_>]) {
        for &(who, operation, resource_type, name, allowed) in cases {
            assert_eq!(
                auth.authorize(acls, who, operation, resource_type, name),
                allowed,
                "{who:?} {operation:?} on {resource_type:?} {name}"
            );
        }
    }

    #[test]
    fn literal_allow_is_for_that_principal_and_operation_only() {
        let acls = set([allow_read("t")]);
        let cases = [
            (ALICE, Read, Topic, "t", true),
            (ALICE, Write, Topic, "t", false),
            (BOB, Read, Topic, "t", false),
            (ALICE, Read, Topic, "t2", false),
            (ALICE, Read, Group, "t", false),
        ];
        check(&Authorizer::default(), &acls, &cases);
    }

    #[test]
    fn deny_beats_allow_whatever_pattern_carries_it() {
        let auth = Authorizer::default();
        let secret = acl(
            Topic,
            PatternType::Prefixed,
            "secret-",
            "User:*",
            Read,
            Deny,
        );
        let acls = set([allow_read("*"), secret]);
        let cases = [
            (ALICE, Read, Topic, "public", true),
            (ALICE, Read, Topic, "secret-plans", false),
        ];
        check(&auth, &acls, &cases);
        let acls = set([on_t(All, Allow), on_t(Write, Deny)]);
        let cases = [
            (ALICE, Read, Topic, "t", true),
            (ALICE, Write, Topic, "t", false),
        ];
        check(&auth, &acls, &cases);
    }

    #[test]
    fn prefixed_wildcard_principal_and_host_match_as_kafka() {
        let mut from_host = acl(Topic, PatternType::Prefixed, "app-", "User:*", Write, Allow);
        from_host.host = "10.0.0.1".to_owned();
        let elsewhere = Requester {
            host: "10.0.0.9",
            ..ALICE
        };
        let cases = [
            (ALICE, Write, Topic, "app-orders", true),
            (ALICE, Write, Topic, "app-", true),
            (ALICE, Write, Topic, "app", false),
            (ALICE, Write, Topic, "other-app-x", false),
            (elsewhere, Write, Topic, "app-orders", false),
        ];
        check(&Authorizer::default(), &set([from_host]), &cases);
    }

    #[test]
    fn allowed_operations_imply_describe_but_denied_ones_do_not_deny_it() {
        let auth = Authorizer::default();
        let implying = [
            (Read, true),
            (Write, true),
            (Delete, true),
            (Alter, true),
            (Describe, true),
            (All, true),
            (Create, false),
            (AlterConfigs, false),
            (DescribeConfigs, false),
            (ClusterAction, false),
        ];
        for (granted, implies) in implying {
            let acls = set([on_t(granted, Allow)]);
            assert_eq!(
                auth.authorize(&acls, ALICE, Describe, Topic, "t"),
                implies,
                "{granted:?}"
            );
        }
        let cases = [
            (ALICE, DescribeConfigs, Topic, "t", true),
            (ALICE, Alter, Topic, "t", false),
        ];
        check(&auth, &set([on_t(AlterConfigs, Allow)]), &cases);
        let cases = [
            (ALICE, Describe, Topic, "t", true),
            (ALICE, Read, Topic, "t", false),
        ];
        check(
            &auth,
            &set([on_t(Describe, Allow), on_t(Read, Deny)]),
            &cases,
        );
    }

    #[test]
    fn super_users_pass_even_denials() {
        let auth = Authorizer::new(" User:admin ; User:broker;", false);
        let acls = set([acl(Topic, PatternType::Literal, "*", "User:*", All, Deny)]);
        let admin = Requester {
            principal: "User:admin",
            host: "1.2.3.4",
        };
        let cases = [
            (admin, Alter, Cluster, "kafka-cluster", true),
            (admin, Write, Topic, "t", true),
            (ALICE, Write, Topic, "t", false),
        ];
        check(&auth, &acls, &cases);
    }

    #[test]
    fn no_acl_found_allows_only_when_configured_and_only_for_unbound_resources() {
        let acls = set([allow_read("t")]);
        let open = Authorizer::new("", true);
        // "t" has a binding: the setting does not open it.
        let cases = [
            (BOB, Write, Topic, "other", true),
            (BOB, Read, Topic, "t", false),
        ];
        check(&open, &acls, &cases);
        check(
            &Authorizer::default(),
            &acls,
            &[(BOB, Write, Topic, "other", false)],
        );
    }

    #[test]
    fn any_resource_checks_follow_kafkas_authorize_by_resource_type() {
        use PatternType::{Literal, Prefixed};
        let auth = Authorizer::default();
        let write = |name: &str, pattern| acl(Topic, pattern, name, "User:alice", Write, Allow);
        let deny = |name: &str, pattern| acl(Topic, pattern, name, "User:alice", Write, Deny);
        let cases = [
            (vec![], ALICE, false),
            (vec![write("t", Literal)], ALICE, true),
            (vec![write("t", Literal)], BOB, false),
            (vec![write("t", Literal), deny("t", Literal)], ALICE, false),
            (
                vec![write("app-x", Prefixed), deny("app-", Prefixed)],
                ALICE,
                false,
            ),
            (
                vec![write("app-x", Literal), deny("other", Prefixed)],
                ALICE,
                true,
            ),
            (vec![write("t", Literal), deny("*", Literal)], ALICE, false),
        ];
        for (bindings, who, allowed) in cases {
            let described = format!("{bindings:?}");
            assert_eq!(
                auth.authorize_any(&set(bindings), who, Write, Topic),
                allowed,
                "{who:?} over {described}"
            );
        }
    }
}
