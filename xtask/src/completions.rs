//! `cargo xtask completions`: maglevc's shell completions, written to `completions/` in the cargo target dir (`target/completions/`)
//! (`maglevc.bash`, `_maglevc` for zsh, `maglevc.fish`).
//!
//! Each script is clap_complete's completion of the options, joined to a static completion of
//! the command words. The words come from `maglevc::tree` itself: a walk of every position the
//! parser can reach ([`states`]), each with the spellings that fit there. A value slot (a
//! frontend, a backend, a weight, ...) is the state `@`; live names are the interactive shell's
//! job. The scripts resolve typed words with the tree's rules:
//!
//! | typed word | next state |
//! |---|---|
//! | a spelling at this state | its keyword (an alias maps to its keyword) |
//! | a prefix of exactly one keyword | that keyword |
//! | a prefix of several | none: stop completing (ambiguous) |
//! | anything else where a value fits | `@` |

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::CommandFactory;
use clap_complete::Shell;
use maglevc::tree::{self, NameKind, NameSource};

/// Where the scripts go, relative to the workspace root.
pub(crate) const OUT_DIR: &str = "completions";

/// The marker of a value slot, in states and entries.
const VALUE: &str = "@";

/// A bound on the positions walked: the tree has a few hundred; a cycle would be a bug.
const MAX_STATES: usize = 10_000;

/// One position in the command tree: what may be typed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// `(spelling, keyword)`: the words that fit; the keyword is [`VALUE`] for a fixed value
    /// (a log level).
    pub(crate) words: Vec<(String, String)>,
    /// A free value (a name or a number) fits here.
    pub(crate) value: bool,
}

/// A name source whose names are never offered: completion asks for live names, which a
/// static script cannot know.
struct NoLiveNames;

impl NameSource for NoLiveNames {
    fn names(&self, _kind: NameKind, _args: &tree::Args) -> Vec<String> {
        Vec::new()
    }
}

/// A word the tree accepts for a value placeholder, to walk past it.
fn sample(placeholder: &str) -> &'static str {
    match placeholder {
        "<0-100>" | "<n>" => "1",
        "<level>" => tree::LEVELS[0],
        _ => "x",
    }
}

fn line_for(words: &[String]) -> String {
    let mut line = words.join(" ");
    if !line.is_empty() {
        line.push(' ');
    }
    line
}

/// Every position of the command tree, keyed by the keywords (and `@` for values) leading to
/// it.
pub(crate) fn states() -> Result<BTreeMap<String, State>> {
    let mut out = BTreeMap::new();
    // (state key words, the words the tree API is given)
    let mut queue: VecDeque<(Vec<String>, Vec<String>)> = VecDeque::from([(vec![], vec![])]);
    while let Some((key, line_words)) = queue.pop_front() {
        let key_text = key.join(" ");
        if out.contains_key(&key_text) {
            continue;
        }
        if out.len() >= MAX_STATES {
            bail!("the command tree has more than {MAX_STATES} positions");
        }
        let line = line_for(&line_words);
        let entries = tree::help_at(&line).map_err(|e| anyhow::anyhow!("{line:?}: {e}"))?;
        let keywords: Vec<&str> = entries
            .iter()
            .map(|e| e.word)
            .filter(|w| !w.starts_with('<'))
            .collect();
        let values: Vec<&str> = entries
            .iter()
            .map(|e| e.word)
            .filter(|w| w.starts_with('<') && *w != "<cr>")
            .collect();
        let mut state = State {
            words: Vec::new(),
            value: false,
        };
        for spelling in tree::complete(&line, &NoLiveNames) {
            let keyword = if keywords.contains(&spelling.as_str()) {
                spelling.clone()
            } else if tree::LEVELS.contains(&spelling.as_str()) && values.contains(&"<level>") {
                VALUE.to_owned()
            } else {
                alias_target(&line, &spelling)?
            };
            state.words.push((spelling, keyword));
        }
        for keyword in &keywords {
            let mut next_key = key.clone();
            next_key.push((*keyword).to_owned());
            let mut next_line = line_words.clone();
            next_line.push((*keyword).to_owned());
            queue.push_back((next_key, next_line));
        }
        if let Some(placeholder) = values.first() {
            state.value = *placeholder != "<level>";
            let mut next_key = key.clone();
            next_key.push(VALUE.to_owned());
            let mut next_line = line_words.clone();
            next_line.push(sample(placeholder).to_owned());
            queue.push_back((next_key, next_line));
        }
        out.insert(key_text, state);
    }
    Ok(out)
}

/// The keyword an alias spelling stands for at the end of `line`.
fn alias_target(line: &str, spelling: &str) -> Result<String> {
    let entries = tree::help_at(&format!("{line}{spelling}"))
        .map_err(|e| anyhow::anyhow!("{line}{spelling}: {e}"))?;
    let keywords: Vec<&str> = entries
        .iter()
        .map(|e| e.word)
        .filter(|w| !w.starts_with('<'))
        .collect();
    match keywords.as_slice() {
        [one] => Ok((*one).to_owned()),
        _ => bail!("{line}{spelling}: cannot tell which keyword {spelling:?} spells: {keywords:?}"),
    }
}

/// A state's entry as the scripts read it: `spelling` or `spelling=keyword`, and `@` when a
/// value fits.
fn entry(state: &State) -> String {
    let mut items: Vec<String> = state
        .words
        .iter()
        .map(|(s, k)| {
            if s == k {
                s.clone()
            } else {
                format!("{s}={k}")
            }
        })
        .collect();
    if state.value {
        items.push(VALUE.to_owned());
    }
    items.join(" ")
}

/// The long options of maglevc that take a value (the scripts skip them and their value).
fn valued_options() -> Vec<String> {
    maglevc::cli::Cli::command()
        .get_arguments()
        .filter(|a| a.get_action().takes_values() && !a.is_positional())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

fn clap_script(shell: Shell) -> Result<String> {
    let mut cmd = maglevc::cli::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "maglevc", &mut out);
    String::from_utf8(out).context("clap_complete wrote non-UTF-8")
}

/// `case` arms for bash and zsh: one per state, printing its entry.
fn sh_table() -> Result<String> {
    let mut out = String::from("_maglevc_tree_entry() {\n    case \"$1\" in\n");
    for (key, state) in states()? {
        out.push_str(&format!("        '{key}') echo '{}' ;;\n", entry(&state)));
    }
    out.push_str("        *) return 1 ;;\n    esac\n}\n");
    Ok(out)
}

/// The bash script.
pub(crate) fn bash() -> Result<String> {
    let clap = clap_script(Shell::Bash)?;
    // clap's function completes the options; ours decides when to call it.
    let Some(end) = clap.find("\nif [[ \"${BASH_VERSINFO[0]}\" -eq 4") else {
        bail!("clap_complete's bash script has no `complete` block to replace");
    };
    let clap = clap[..end].replacen("_maglevc() {", "_maglevc_options() {", 1);
    if !clap.contains("_maglevc_options() {") {
        bail!("clap_complete's bash script has no _maglevc function");
    }
    let options = valued_options().join("|");
    Ok(format!(
        "# bash completion for maglevc: options (clap_complete) and the command words\n\
         # (generated from maglevc's command tree by `cargo xtask completions`).\n\n\
         {clap}\n{table}\n{BASH_WALK}\n\
         _maglevc() {{\n\
         \x20   local cur=${{COMP_WORDS[COMP_CWORD]}} i=1 state='' next\n\
         \x20   while (( i < COMP_CWORD )); do\n\
         \x20       case ${{COMP_WORDS[i]}} in\n\
         \x20           {options}) (( i += 2 )); continue ;;\n\
         \x20           -*) (( i += 1 )); continue ;;\n\
         \x20       esac\n\
         \x20       break\n\
         \x20   done\n\
         \x20   if (( i > COMP_CWORD )) || {{ (( i == COMP_CWORD )) && [[ $cur == -* ]]; }}; then\n\
         \x20       _maglevc_options \"$@\"\n\
         \x20       return\n\
         \x20   fi\n\
         \x20   while (( i < COMP_CWORD )); do\n\
         \x20       next=$(_maglevc_tree_next \"$state\" \"${{COMP_WORDS[i]}}\") || return 0\n\
         \x20       state=${{state:+$state }}$next\n\
         \x20       (( i += 1 ))\n\
         \x20   done\n\
         \x20   COMPREPLY=($(compgen -W \"$(_maglevc_tree_words \"$state\")\" -- \"$cur\"))\n\
         }}\n\n\
         complete -F _maglevc maglevc\n",
        table = sh_table()?,
    ))
}

/// The walk shared by bash and zsh (both read it the same way).
const BASH_WALK: &str = r#"# The state after word $2 at state $1, by the tree's rules: an exact spelling, else a
# unique prefix, else a value where one fits.
_maglevc_tree_next() {
    local entry item spelling keyword value=0 found=''
    local -a items matches
    entry=$(_maglevc_tree_entry "$1") || return 1
    read -ra items <<< "$entry"
    for item in "${items[@]}"; do
        if [[ $item == @ ]]; then value=1; continue; fi
        spelling=${item%%=*}
        keyword=${item#*=}
        if [[ $spelling == "$2" ]]; then printf '%s\n' "$keyword"; return 0; fi
        if [[ $spelling == "$2"* && " ${matches[*]} " != *" $keyword "* ]]; then
            matches+=("$keyword")
        fi
    done
    if (( ${#matches[@]} == 1 )); then found=${matches[0]}; fi
    if [[ -z $found && ${#matches[@]} -eq 0 && $value -eq 1 ]]; then found=@; fi
    [[ -n $found ]] && printf '%s\n' "$found"
}

# The spellings that fit at state $1.
_maglevc_tree_words() {
    local entry item
    local -a items words
    entry=$(_maglevc_tree_entry "$1") || return 0
    read -ra items <<< "$entry"
    for item in "${items[@]}"; do
        [[ $item == @ ]] || words+=("${item%%=*}")
    done
    printf '%s\n' "${words[*]}"
}
"#;

/// The zsh script.
pub(crate) fn zsh() -> Result<String> {
    let clap = clap_script(Shell::Zsh)?;
    // The COMMAND words: clap's `_default` action becomes the tree walk.
    let Some(line) = clap.lines().find(|l| l.contains("'*::command")) else {
        bail!("clap_complete's zsh script has no `*::command` spec");
    };
    let Some(new_line) = line
        .strip_suffix(":_default' \\")
        .map(|l| format!("{l}:_maglevc_tree' \\"))
    else {
        bail!("clap_complete's zsh `*::command` spec does not end in _default: {line}");
    };
    let clap = clap.replacen(line, &new_line, 1);
    let Some(end) = clap.find("if [ \"$funcstack[1]\" = \"_maglevc\" ]") else {
        bail!("clap_complete's zsh script has no dispatch block");
    };
    let (head, dispatch) = clap.split_at(end);
    Ok(format!(
        "{head}\n{table}\n{ZSH_WALK}\n{dispatch}",
        table = sh_table()?,
    ))
}

/// The zsh tree walk: inside `*::`, `words` holds only the command words.
const ZSH_WALK: &str = r#"# The state after word $2 at state $1, by the tree's rules: an exact spelling, else a
# unique prefix, else a value where one fits.
_maglevc_tree_next() {
    local entry item spelling keyword value=0
    local -a matches
    entry=$(_maglevc_tree_entry "$1") || return 1
    for item in ${(s: :)entry}; do
        if [[ $item == @ ]]; then value=1; continue; fi
        spelling=${item%%=*}
        keyword=${item#*=}
        if [[ $spelling == "$2" ]]; then print -r -- "$keyword"; return 0; fi
        if [[ $spelling == ${(b)2}* ]] && (( ! ${matches[(Ie)$keyword]} )); then
            matches+=("$keyword")
        fi
    done
    if (( ${#matches} == 1 )); then print -r -- "$matches[1]"; return 0; fi
    if (( ${#matches} == 0 && value )); then print -r -- @; return 0; fi
    return 1
}

_maglevc_tree() {
    local state='' next i entry item
    local -a candidates
    for (( i = 1; i < CURRENT; i++ )); do
        next=$(_maglevc_tree_next "$state" "$words[i]") || return 1
        state=${state:+$state }$next
    done
    entry=$(_maglevc_tree_entry "$state") || return 1
    for item in ${(s: :)entry}; do
        [[ $item == @ ]] || candidates+=("${item%%=*}")
    done
    compadd -a candidates
}
"#;

/// The fish script.
pub(crate) fn fish() -> Result<String> {
    let clap = clap_script(Shell::Fish)?;
    let mut table = String::from("function __maglevc_tree_entry\n    switch \"$argv[1]\"\n");
    for (key, state) in states()? {
        table.push_str(&format!(
            "        case '{key}'\n            echo '{}'\n",
            entry(&state)
        ));
    }
    table.push_str("        case '*'\n            return 1\n    end\nend\n");
    let options = valued_options().join(" ");
    Ok(format!(
        "# fish completion for maglevc: options (clap_complete) and the command words\n\
         # (generated from maglevc's command tree by `cargo xtask completions`).\n\n\
         {clap}\n{table}\n{}\n",
        FISH_WALK.replace("@OPTIONS@", &options)
    ))
}

const FISH_WALK: &str = r#"# The state after word $argv[2] at state $argv[1], by the tree's rules: an exact spelling,
# else a unique prefix, else a value where one fits.
function __maglevc_tree_next
    set -l matches
    set -l value 0
    set -l word $argv[2]
    for item in (__maglevc_tree_entry $argv[1] | string split ' ')
        if test "$item" = '@'
            set value 1
            continue
        end
        set -l spelling (string replace -r '=.*$' '' -- $item)
        set -l keyword (string replace -r '^[^=]*=' '' -- $item)
        if test "$spelling" = "$word"
            echo $keyword
            return 0
        end
        if test (string sub -l (string length -- $word) -- $spelling) = "$word"
            contains -- $keyword $matches; or set -a matches $keyword
        end
    end
    if test (count $matches) -eq 1
        echo $matches[1]
        return 0
    end
    if test (count $matches) -eq 0 -a $value -eq 1
        echo '@'
        return 0
    end
    return 1
end

# The command words that fit after what is typed so far.
function __maglevc_tree_candidates
    set -l tokens (commandline -opc)
    set -e tokens[1]
    while set -q tokens[1]
        if contains -- $tokens[1] @OPTIONS@
            set -e tokens[1]
            set -q tokens[1]; and set -e tokens[1]
        else if string match -q -- '-*' $tokens[1]
            set -e tokens[1]
        else
            break
        end
    end
    set -l state ''
    for word in $tokens
        set -l next (__maglevc_tree_next "$state" $word); or return
        if test -z "$state"
            set state $next
        else
            set state "$state $next"
        end
    end
    for item in (__maglevc_tree_entry "$state" | string split ' ')
        test "$item" = '@'; and continue
        string replace -r '=.*$' '' -- $item
    end
end

complete -c maglevc -f -n 'not string match -q -- "-*" (commandline -ct)' -a '(__maglevc_tree_candidates)'"#;

/// Every script: its file name and text.
pub(crate) fn scripts() -> Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("maglevc.bash", bash()?),
        ("_maglevc", zsh()?),
        ("maglevc.fish", fish()?),
    ])
}

/// Writes every script into `target_dir/completions/`; returns the paths written.
pub(crate) fn write(target_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = target_dir.join(OUT_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (file, text) in scripts()? {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Lines to complete: every position of the tree (with sample values), plus abbreviated
    /// and aliased words, options before the command, and ambiguous or unknown words.
    fn lines() -> Vec<String> {
        let mut lines: Vec<String> = states()
            .unwrap()
            .keys()
            .map(|key| {
                let mut words: Vec<String> = Vec::new();
                for w in key.split_whitespace() {
                    let word = match (w, words.last().map(String::as_str)) {
                        (VALUE, Some("num" | "weight")) => "1",
                        (VALUE, Some("level")) => "info",
                        (VALUE, _) => "x",
                        _ => w,
                    };
                    words.push(word.to_owned());
                }
                line_for(&words)
            })
            .collect();
        lines.extend(
            [
                "s",
                "sh ",
                "sh fr",
                "sh fr ",
                "sh ba nginx0 ",
                "show frontend ",
                "se ba web1 ",
                "set backend web1 p",
                "w e num 5 l",
                "w e log level ",
                "w e log level i",
                "sy v l s ",
                "x ",
                "s ",
                "pre fr web ba web1 ",
                "pre fr web ba web1 w ",
                "watch events num 3 backend b ",
                "con ",
                "--json sh ",
                "--server 127.0.0.1:1 c",
                "--color never --json w ",
            ]
            .map(str::to_owned),
        );
        lines
    }

    /// What the tree itself completes: the interactive shell's answer without live names.
    fn expected(line: &str) -> Vec<String> {
        let command: Vec<&str> = line.split_whitespace().collect();
        // Skip the global options (and their values) as the scripts do.
        let mut i = 0;
        let valued = valued_options();
        while i < command.len() && command[i].starts_with('-') {
            i += if valued.iter().any(|o| o == command[i]) {
                2
            } else {
                1
            };
        }
        let rest = command[i.min(command.len())..].join(" ");
        let rest = if line.ends_with(' ') && !rest.is_empty() {
            format!("{rest} ")
        } else {
            rest
        };
        let mut words = tree::complete(&rest, &NoLiveNames);
        words.sort();
        words
    }

    fn write_script(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-completions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn split(line: &str) -> Vec<String> {
        let mut words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if line.is_empty() || line.ends_with(' ') {
            words.push(String::new());
        }
        words
    }

    fn quote(word: &str) -> String {
        format!("'{}'", word.replace('\'', r"'\''"))
    }

    #[test]
    fn the_walk_covers_every_command() {
        let states = states().unwrap();
        assert!(states.len() > 50, "{}", states.len());
        // Every command of the synopsis is reachable through the states.
        for (synopsis, _) in tree::synopsis() {
            let mut key = String::new();
            for word in synopsis.split_whitespace() {
                if word.starts_with('[') {
                    break;
                }
                let word = if word.starts_with('<') { VALUE } else { word };
                let state = &states[&key];
                assert!(
                    word == VALUE && state.value
                        || state.words.iter().any(|(_, k)| k == word)
                        || word == VALUE && state.words.iter().any(|(_, k)| k == VALUE),
                    "{synopsis}: {word} not offered at {key:?}: {state:?}"
                );
                key = if key.is_empty() {
                    word.to_owned()
                } else {
                    format!("{key} {word}")
                };
            }
        }
        // Aliases map to their keyword.
        let show = &states["show"];
        assert!(
            show.words
                .contains(&("frontend".to_owned(), "frontends".to_owned())),
            "{show:?}"
        );
    }

    #[test]
    fn bash_registers_and_completes_as_the_tree_does() {
        let script = write_script("maglevc.bash", &bash().unwrap());
        let lines = lines();
        let mut program = format!(
            "source {} || exit 9\ncomplete -p maglevc\n",
            script.display()
        );
        program.push_str(
            "t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); \
             _maglevc maglevc \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"; \
             printf '%s\\n' \"${COMPREPLY[*]}\"; }\n",
        );
        for line in &lines {
            let words: Vec<String> = std::iter::once("maglevc".to_owned())
                .chain(split(line))
                .map(|w| quote(&w))
                .collect();
            program.push_str(&format!("t {}\n", words.join(" ")));
        }
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &program])
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
        let mut got = stdout.lines();
        assert_eq!(got.next(), Some("complete -F _maglevc maglevc"));
        for line in &lines {
            let mut words: Vec<String> = got
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            words.sort();
            assert_eq!(words, expected(line), "bash completion of {line:?}");
        }
        // The options complete through clap's part.
        let flags = Command::new("bash")
            .args(["--norc", "--noprofile", "-c"])
            .arg(format!(
                "source {}; COMP_WORDS=(maglevc --c); COMP_CWORD=1; _maglevc maglevc --c maglevc; \
                 echo \"${{COMPREPLY[*]}}\"; COMP_WORDS=(maglevc --color ''); COMP_CWORD=2; \
                 _maglevc maglevc '' --color; echo \"${{COMPREPLY[*]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&flags.stdout),
            "--color\nauto always never\n"
        );
    }

    #[test]
    fn fish_is_valid_and_completes_as_the_tree_does() {
        let text = fish().unwrap();
        assert!(text.contains("complete -c maglevc -l server"), "{text}");
        assert!(text.contains("__maglevc_tree_candidates"));
        let script = write_script("maglevc.fish", &text);
        if Command::new("fish").arg("--version").output().is_err() {
            // No fish here: the structure was checked above.
            return;
        }
        let check = Command::new("fish")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        for line in [
            "sh ",
            "s",
            "sh fr web ",
            "--json w e num 5 ",
            "w e log level ",
            "se ba web1 ",
        ] {
            let out = Command::new("fish")
                .args(["--no-config", "-c"])
                .arg(format!(
                    "source {}; complete -C {}",
                    script.display(),
                    quote(&format!("maglevc {line}"))
                ))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let mut words: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
                .collect();
            words.sort();
            assert_eq!(words, expected(line), "fish completion of {line:?}");
        }
    }

    #[test]
    fn zsh_is_valid() {
        let text = zsh().unwrap();
        assert!(text.starts_with("#compdef maglevc"), "{text}");
        assert!(text.contains(":_maglevc_tree'"), "{text}");
        assert!(text.contains("_maglevc_tree_entry() {"));
        let script = write_script("_maglevc", &text);
        if Command::new("zsh").arg("--version").output().is_err() {
            // No zsh here: the structure was checked above.
            return;
        }
        let check = Command::new("zsh").arg("-n").arg(&script).output().unwrap();
        assert!(check.status.success(), "{check:?}");
        // Loaded for real, the walk resolves abbreviations as the tree does.
        let out = Command::new("zsh")
            .args(["-f", "-c"])
            .arg(format!(
                "autoload -U compinit; compinit -u -D; source {}; \
                 _maglevc_tree_next '' sh; _maglevc_tree_next show fr; \
                 _maglevc_tree_next '' s || echo ambiguous; _maglevc_tree_next 'show frontends' web",
                script.display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "show\nfrontends\nambiguous\n@\n",
            "{out:?}"
        );
    }
}
