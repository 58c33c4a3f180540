//! Runs the Argo CD health check (docs/argocd/health.lua) on an object with real Lua
//! interpreters, the way Argo CD hands objects to health scripts.

use std::process::Command;

use serde_json::Value;

pub const SCRIPT: &str = "docs/argocd/health.lua";
/// Argo CD's gopher-lua speaks Lua 5.1; Debian's current Lua is 5.4. Both must agree.
pub const INTERPRETERS: [&str; 2] = ["lua5.1", "lua5.4"];

/// A Lua literal for a JSON value.
pub fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "[{}] = {}",
                    lua_literal(&Value::String(k.clone())),
                    lua_literal(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs the health script on `obj` under every interpreter and returns its
/// (status, message), which must be the same under all of them.
pub fn health(obj: &Value) -> (String, String) {
    let script = super::repo_path(SCRIPT);
    let program = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(tostring(hs.status), \"\\t\", tostring(hs.message))\n",
        lua_literal(obj),
        lua_literal(&Value::String(script.display().to_string()))
    );
    let mut seen: Option<(String, String)> = None;
    for lua in INTERPRETERS {
        let out = Command::new(lua)
            .arg("-e")
            .arg(&program)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {lua} ({e}): run hack/test-deps.sh (installs lua5.1 and lua5.4)")
            });
        assert!(
            out.status.success(),
            "{lua} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let (status, message) = text.split_once('\t').expect("status\\tmessage");
        let got = (status.to_string(), message.to_string());
        if let Some(first) = &seen {
            assert_eq!(first, &got, "{lua} disagrees with {}", INTERPRETERS[0]);
        }
        seen = Some(got);
    }
    seen.expect("ran")
}
