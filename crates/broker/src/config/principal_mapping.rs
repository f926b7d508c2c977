//! Kafka's `ssl.principal.mapping.rules` (KIP-371): rules, comma-separated and tried in
//! order, that turn a client certificate's subject (RFC 2253, `CN=app,OU=Ops,O=Example`)
//! into the name of its `User:` principal.
//!
//! A rule is `DEFAULT` (the whole subject) or `RULE:pattern/replacement/` with an optional
//! `L` or `U` after the last slash (lower or upper case the result). A `RULE` applies when
//! its Java regular expression matches the whole subject; the result is the subject with
//! every match of the pattern replaced by the replacement (`$1` names a group, `\` takes the
//! next character literally; a group number beyond the pattern's groups stays literal, as in
//! Kafka). `/` inside a pattern or replacement is written `\/`. Splitting follows Kafka's
//! `SslPrincipalMapper`: a comma inside a rule's pattern or replacement does not end the
//! rule, empty rules are skipped, anything else that is not a rule is refused. A subject no
//! rule applies to is refused (the connection is closed), as Kafka's `NoMatchingRule`.
//!
//! The pattern is compiled by the `regex` crate: Java's syntax beyond what it shares with it
//! (look-around, back-references inside the pattern) is refused at start.

use regex::{Captures, Regex};

/// A parsed `ssl.principal.mapping.rules` value.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        /// The pattern, to replace every match of.
        pattern: Regex,
        /// The pattern anchored at both ends: whether the rule applies.
        whole: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Why a rules value was refused: the rule and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rule `{rule}`: {reason}")]
pub struct RuleError {
    /// The rule as split from the value.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// No rule applies to a subject (Kafka's `NoMatchingRule`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no ssl.principal.mapping.rules rule applies to {subject}")]
pub struct NoMatchingRule {
    /// The certificate subject.
    pub subject: String,
}

impl Default for PrincipalMapper {
    /// Kafka's default, `DEFAULT`: the whole subject.
    fn default() -> Self {
        Self {
            rules: vec![Rule::Default],
        }
    }
}

impl PrincipalMapper {
    /// Parses a rules value.
    pub fn parse(rules: &str) -> Result<Self, RuleError> {
        let rules = split(rules)
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(|r| parse_rule(&r))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// The principal name of `subject`: the result of the first rule that applies.
    pub fn name(&self, subject: &str) -> Result<String, NoMatchingRule> {
        self.rules
            .iter()
            .find_map(|rule| rule.apply(subject))
            .ok_or_else(|| NoMatchingRule {
                subject: subject.to_owned(),
            })
    }
}

impl Rule {
    fn apply(&self, subject: &str) -> Option<String> {
        let Rule::Replace {
            pattern,
            whole,
            replacement,
            case,
        } = self
        else {
            return Some(subject.to_owned());
        };
        if !whole.is_match(subject) {
            return None;
        }
        let groups = pattern.captures_len() - 1;
        let result = pattern
            .replace_all(subject, |caps: &Captures<'_>| {
                expand(replacement, caps, groups)
            })
            .into_owned();
        Some(match case {
            Case::Keep => result,
            Case::Lower => result.to_lowercase(),
            Case::Upper => result.to_uppercase(),
        })
    }
}

/// Java's `Matcher.appendReplacement`: `\c` is `c`, `$n` is group `n` (further digits are
/// taken while the number stays a group), a group beyond the pattern's stays literal.
fn expand(replacement: &str, caps: &Captures<'_>, groups: usize) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                let mut number = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    let next = number * 10 + d as usize;
                    if !digits.is_empty() && next > groups {
                        break;
                    }
                    number = next;
                    digits.push(chars.next().unwrap_or('0'));
                }
                if number > groups {
                    out.push('$');
                    out.push_str(&digits);
                } else {
                    out.push_str(caps.get(number).map_or("", |m| m.as_str()));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Scans a pattern or replacement (`\` escapes any character, `/` ends it) from the start
/// of `text`: its length, or `None` without the closing slash.
fn until_slash(text: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some(i),
            '\\' => {
                chars.next()?;
            }
            _ => {}
        }
    }
    None
}

/// The length of `RULE:pattern/replacement/` at the start of `text`, if it is there.
fn rule_head(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("RULE:")?;
    let pattern = until_slash(rest)?;
    let after = &rest[pattern + 1..];
    let replacement = until_slash(after)?;
    Some("RULE:".len() + pattern + 1 + replacement + 1)
}

/// Splits a rules value as Kafka's `RULE_SPLITTER` does: at each rule, `DEFAULT` followed by
/// a comma or the end, or `RULE:pattern/replacement/` and anything up to the next comma, or
/// else anything up to the next comma; whitespace around the commas is dropped.
fn split(rules: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = rules.trim();
    loop {
        rest = rest.trim_start();
        let ends_here = |tail: &str| {
            let tail = tail.trim_start();
            tail.is_empty() || tail.starts_with(',')
        };
        let head = if rest.starts_with("DEFAULT") && ends_here(&rest["DEFAULT".len()..]) {
            "DEFAULT".len()
        } else {
            rule_head(rest).unwrap_or(0)
        };
        let comma = rest[head..].find(',').map(|i| head + i);
        let end = comma.unwrap_or(rest.len());
        let rule = format!("{}{}", &rest[..head], rest[head..end].trim_end());
        out.push(rule);
        match comma {
            Some(comma) => rest = &rest[comma + 1..],
            None => return out,
        }
    }
}

fn parse_rule(rule: &str) -> Result<Rule, RuleError> {
    let error = |reason: String| RuleError {
        rule: rule.to_owned(),
        reason,
    };
    if rule == "DEFAULT" {
        return Ok(Rule::Default);
    }
    let head = rule_head(rule)
        .ok_or_else(|| error("expected DEFAULT or RULE:pattern/replacement/[LU]".into()))?;
    let case = match &rule[head..] {
        "" => Case::Keep,
        "L" => Case::Lower,
        "U" => Case::Upper,
        other => return Err(error(format!("unmatched substring `{other}`"))),
    };
    let body = &rule["RULE:".len()..head - 1];
    let slash = until_slash(body).unwrap_or(body.len());
    let (pattern, replacement) = (&body[..slash], &body[slash + 1..]);
    let compile = |p: &str| Regex::new(p).map_err(|e| error(format!("pattern: {e}")));
    Ok(Rule::Replace {
        pattern: compile(pattern)?,
        whole: compile(&format!("^(?:{pattern})$"))?,
        replacement: replacement.to_owned(),
        case,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(value: &str) -> Vec<String> {
        PrincipalMapper::parse(value)
            .unwrap()
            .rules
            .iter()
            .map(|r| match r {
                Rule::Default => "DEFAULT".to_owned(),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                    ..
                } => format!(
                    "RULE:{pattern}/{replacement}{}",
                    match case {
                        Case::Keep => "",
                        Case::Lower => "/L",
                        Case::Upper => "/U",
                    }
                ),
            })
            .collect()
    }

    #[test]
    fn kafkas_valid_and_invalid_rules() {
        for valid in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
        ] {
            assert!(PrincipalMapper::parse(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        ] {
            assert!(PrincipalMapper::parse(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn kafkas_mapping_examples() {
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, \
             RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, \
             RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, \
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        )
        .unwrap();
        let name = |dn: &str| mapper.name(dn).unwrap();
        assert_eq!(name("CN=Duke,OU=ServiceUsers,O=Org,C=US"), "duke");
        assert_eq!(
            name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US"),
            "duke@sme"
        );
        assert_eq!(name("cn=duke,ou=sme,dc=mycp,dc=com"), "DUKE@SME");
        assert_eq!(name("cN=duke,OU=JavaSoft,O=Sun Microsystems"), "DUKE");
        assert_eq!(
            name("OU=JavaSoft,O=Sun Microsystems,C=US"),
            "OU=JavaSoft,O=Sun Microsystems,C=US"
        );
    }

    #[test]
    fn a_subject_no_rule_applies_to_is_refused() {
        let mapper = PrincipalMapper::parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/").unwrap();
        assert_eq!(mapper.name("CN=alice,OU=ServiceUsers").unwrap(), "alice");
        assert_eq!(
            mapper.name("CN=bob,OU=Other"),
            Err(NoMatchingRule {
                subject: "CN=bob,OU=Other".into()
            })
        );
        assert_eq!(PrincipalMapper::parse("").unwrap().rules.len(), 0);
        assert!(PrincipalMapper::default().name("CN=x").unwrap() == "CN=x");
    }

    #[test]
    fn rules_split_as_kafkas_splitter() {
        assert!(rules("").is_empty());
        assert_eq!(rules("DEFAULT"), ["DEFAULT"]);
        assert_eq!(rules("RULE://"), ["RULE:/"]);
        assert_eq!(rules("RULE:/.*/"), ["RULE:/.*"]);
        assert_eq!(rules("RULE:/.*/L"), ["RULE:/.*/L"]);
        assert_eq!(rules("  RULE:// ,  DEFAULT  "), ["RULE:/", "DEFAULT"]);
        assert_eq!(
            rules("  RULE:   /     / ,  DEFAULT  "),
            ["RULE:   /     ", "DEFAULT"]
        );
        assert_eq!(
            rules("  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  "),
            ["RULE:([A-Z]*)/$1/U", "RULE:([a-z]+)/$1", "DEFAULT"]
        );
        assert!(rules(",   , , ,      , , ,   ").is_empty());
        assert_eq!(rules(",,RULE://,,,DEFAULT,,"), ["RULE:/", "DEFAULT"]);
        // A comma inside a pattern does not end the rule.
        assert_eq!(
            rules(r"RULE:^CN=([^,]*),OU=(.*)$/$1\/$2/,DEFAULT"),
            [r"RULE:^CN=([^,]*),OU=(.*)$/$1\/$2", "DEFAULT"]
        );
    }

    #[test]
    fn escaped_commas_and_slashes_in_subjects() {
        let mapper = PrincipalMapper::parse(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT").unwrap();
        assert_eq!(
            mapper
                .name(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz")
                .unwrap(),
            r"Tkac\, Adam"
        );
        let mapper = PrincipalMapper::parse(r"RULE:^CN=(\w+),OU=(\w+)$/$2\/$1 $3$/").unwrap();
        assert_eq!(mapper.name("CN=alice,OU=ops").unwrap(), "ops/alice $3$");
    }
}
