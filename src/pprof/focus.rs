//! Which frame of a Go stack a person should read: their own code, not the
//! runtime or the standard library it is blocked in.

/// The frame a person should look at: the first frame, from the leaf, outside
/// Go's standard library (package `main` preferred); the leaf if none.
///
/// In detail: the first frame in package `main`; else the first frame not in
/// the standard library (see [`is_std_frame`]); else the leaf; "" for an
/// empty stack.
pub fn focus_frame(stack: &[String]) -> &str {
    stack
        .iter()
        .find(|f| package_of(f) == "main")
        .or_else(|| stack.iter().find(|f| !is_std_frame(f)))
        .or_else(|| stack.first())
        .map(String::as_str)
        .unwrap_or("")
}

/// The package import path of a Go function name as Go prints it:
/// `net/http` for `net/http.(*conn).serve`, `main` for `main.main.func1`,
/// `github.com/a/b/v2/server` for `github.com/a/b/v2/server.(*client).readLoop`.
///
/// The path ends at the first `.` after its last `/`. That is ambiguous when
/// the last path element itself has a dot (`gopkg.in/x.v1.F` gives
/// `gopkg.in/x`), but the first element, which decides standard library or
/// not, is always right. Receivers and type arguments (`(`, `[`) are ignored.
pub fn package_of(name: &str) -> &str {
    let head = name.find(['(', '[']).map_or(name, |i| &name[..i]);
    let last_slash = head.rfind('/').map_or(0, |i| i + 1);
    match head[last_slash..].find('.') {
        Some(dot) => &name[..last_slash + dot],
        None => head,
    }
}

/// Whether a function is in Go's standard library (or the runtime): its
/// import path's first element has no dot. `runtime.gopark`,
/// `net/http.(*conn).serve`, `sync.(*Mutex).Lock` and
/// `vendor/golang.org/x/net/http2/hpack.F` are; `github.com/x/y.F` and
/// `main.F` are not (`main` is the program's own package).
pub fn is_std_frame(name: &str) -> bool {
    let package = package_of(name);
    if package == "main" {
        return false;
    }
    let first = package.split('/').next().unwrap_or(package);
    !first.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(frames: &[&str]) -> Vec<String> {
        frames.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn packages_of_go_names() {
        for (name, package) in [
            ("main.(*client).writePump", "main"),
            ("main.main.func1", "main"),
            ("main.leakyWorker", "main"),
            ("runtime.gopark", "runtime"),
            ("net/http.(*conn).serve", "net/http"),
            ("sync.(*Mutex).Lock", "sync"),
            ("internal/poll.(*FD).Read", "internal/poll"),
            (
                "github.com/a/b/v2/server.(*client).readLoop",
                "github.com/a/b/v2/server",
            ),
            ("github.com/x/y.F", "github.com/x/y"),
            ("gopkg.in/x.v1.F", "gopkg.in/x"),
            ("main.Map[...].Get", "main"),
            (
                "example.com/m.F[go.shape.*example.com/n.T]",
                "example.com/m",
            ),
            ("nodot", "nodot"),
            ("", ""),
        ] {
            assert_eq!(package_of(name), package, "{name}");
        }
    }

    #[test]
    fn std_is_a_dotless_first_element() {
        for name in [
            "runtime.gopark",
            "net/http.(*conn).serve",
            "sync.(*Mutex).Lock",
            "vendor/golang.org/x/net/http2/hpack.(*Decoder).Write",
        ] {
            assert!(is_std_frame(name), "{name}");
        }
        for name in [
            "main.main",
            "github.com/x/y.F",
            "gopkg.in/x.v1.F",
            "golang.org/x/net/websocket.(*Conn).Read",
        ] {
            assert!(!is_std_frame(name), "{name}");
        }
    }

    #[test]
    fn main_wins_over_third_party() {
        let s = stack(&[
            "runtime.gopark",
            "runtime.chanrecv1",
            "github.com/gorilla/websocket.(*Conn).NextReader",
            "main.(*client).readPump",
            "main.main.func1",
        ]);
        assert_eq!(focus_frame(&s), "main.(*client).readPump");
    }

    #[test]
    fn third_party_when_no_main() {
        let s = stack(&[
            "internal/poll.runtime_pollWait",
            "net.(*conn).Read",
            "github.com/a/b/v2/server.(*client).readLoop",
            "gopkg.in/x.v1.F",
        ]);
        assert_eq!(
            focus_frame(&s),
            "github.com/a/b/v2/server.(*client).readLoop"
        );
        assert_eq!(focus_frame(&s[3..]), "gopkg.in/x.v1.F");
    }

    #[test]
    fn leaf_when_all_std_and_empty_for_none() {
        let s = stack(&["runtime.gopark", "net/http.(*conn).serve"]);
        assert_eq!(focus_frame(&s), "runtime.gopark");
        assert_eq!(focus_frame(&[]), "");
    }
}
