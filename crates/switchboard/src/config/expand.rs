//! Variable expansion: `${VAR}`, `${VAR:-default}` (Claude Code), `${env:VAR}` (VS Code) and
//! `${workspaceFolder}` (VS Code).
//!
//! Expanded values may be secrets: nothing here logs them, and error messages name only the
//! variable.

use std::path::Path;

/// Where expansion looks variables up: `std::env::var` in production, a map in tests.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands every `${...}` reference in `text`.
///
/// `${VAR:-default}` uses the default when `VAR` is unset or empty. `${workspaceFolder}` is
/// `workspace`. The error message says which reference failed and what to write instead.
pub(super) fn expand(text: &str, env: Lookup<'_>, workspace: &Path) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unclosed variable reference {:?}; write ${{VAR}}",
                &rest[start..]
            ));
        };
        out.push_str(&resolve(&after[..end], env, workspace)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one reference, given what is between `${` and `}`.
fn resolve(inner: &str, env: Lookup<'_>, workspace: &Path) -> Result<String, String> {
    if inner.starts_with("input:") {
        return Err(format!(
            "\"${{{inner}}}\" asks for a prompted input, which Switchboard does not support; \
             put the value in an environment variable and write ${{env:NAME}}"
        ));
    }
    if inner == "workspaceFolder" {
        return Ok(workspace.display().to_string());
    }
    let (body, default) = match inner.split_once(":-") {
        Some((body, default)) => (body, Some(default)),
        None => (inner, None),
    };
    let name = body.strip_prefix("env:").unwrap_or(body);
    if !is_variable_name(name) {
        return Err(format!(
            "unsupported variable reference \"${{{inner}}}\"; \
             write ${{VAR}}, ${{VAR:-default}} or ${{env:VAR}}"
        ));
    }
    match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable {name:?} is not set; set it, or give a default with \
             ${{{name}:-default}}"
        )),
    }
}

/// Whether `name` looks like an environment variable: letters, digits and `_`, not starting
/// with a digit.
pub(super) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, String> {
        expand(text, &env, Path::new("/ws"))
    }

    #[test]
    fn expands_every_syntax() {
        assert_eq!(run("plain $HOME $ {x}").as_deref(), Ok("plain $HOME $ {x}"));
        assert_eq!(run("${HOME}/bin").as_deref(), Ok("/home/me/bin"));
        assert_eq!(run("${env:HOME}").as_deref(), Ok("/home/me"));
        assert_eq!(run("${NOPE:-8080}").as_deref(), Ok("8080"));
        assert_eq!(run("${EMPTY:-x}").as_deref(), Ok("x"));
        assert_eq!(run("${HOME:-x}").as_deref(), Ok("/home/me"));
        assert_eq!(run("${NOPE:-}").as_deref(), Ok(""));
        assert_eq!(run("${workspaceFolder}/a").as_deref(), Ok("/ws/a"));
        assert_eq!(run("${HOME}${HOME}").as_deref(), Ok("/home/me/home/me"));
    }

    #[test]
    fn explains_what_fails() {
        assert_eq!(
            run("x ${NOPE} y"),
            Err(
                "environment variable \"NOPE\" is not set; set it, or give a default with \
                 ${NOPE:-default}"
                    .into()
            )
        );
        assert_eq!(
            run("${input:token}"),
            Err(
                "\"${input:token}\" asks for a prompted input, which Switchboard does not \
                 support; put the value in an environment variable and write ${env:NAME}"
                    .into()
            )
        );
        assert_eq!(
            run("${config:x}"),
            Err(
                "unsupported variable reference \"${config:x}\"; write ${VAR}, \
                 ${VAR:-default} or ${env:VAR}"
                    .into()
            )
        );
        assert_eq!(
            run("a ${HOME"),
            Err("unclosed variable reference \"${HOME\"; write ${VAR}".into())
        );
    }
}
