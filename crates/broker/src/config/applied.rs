//! The macro that makes one `match` both apply the broker properties and list them.

/// Defines `BrokerConfig::apply_one` from the arms of its `match`, and from the same arms
/// the constant `APPLIED_PROPERTIES`: every property name an arm names. So adding an arm is
/// the one change that makes a property applied, known (no unknown-key warning) and a
/// target of suggestions. Arms are `"name" | "alias" => expression,` or
/// `"name" => { block }`; `apply_one` returns `Ok(false)` for a key no arm names.
macro_rules! applied_properties {
    (
        impl BrokerConfig {
            fn apply_one(&mut $this:ident, $key:ident: &str, $value:ident: &str) {
                match $scrutinee:ident { $($arms:tt)* }
            }
        }
    ) => {
        applied_properties!(@arms [$this $key $value $scrutinee] [] [] $($arms)*);
    };
    (@arms $vars:tt [$($done:tt)*] [$($names:tt)*]
        $($name:literal)|+ => $body:block $(,)? $($rest:tt)*) => {
        applied_properties!(@arms $vars
            [$($done)* $($name)|+ => $body,] [$($names)* $($name,)+] $($rest)*);
    };
    (@arms $vars:tt [$($done:tt)*] [$($names:tt)*]
        $($name:literal)|+ => $body:expr, $($rest:tt)*) => {
        applied_properties!(@arms $vars
            [$($done)* $($name)|+ => $body,] [$($names)* $($name,)+] $($rest)*);
    };
    (@arms [$this:ident $key:ident $value:ident $scrutinee:ident]
        [$($done:tt)*] [$($names:tt)*]) => {
        /// Every property name [`BrokerConfig::apply_one`] applies.
        const APPLIED_PROPERTIES: &[&str] = &[$($names)*];

        impl BrokerConfig {
            /// Applies one property; `Ok(false)` when no arm names `key`.
            fn apply_one(&mut $this, $key: &str, $value: &str) -> Result<bool, ConfigError> {
                match $scrutinee {
                    $($done)*
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}
