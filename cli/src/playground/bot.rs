//! The scripted demo bot of the playground: a handful of intents, a fallback, a menu with
//! "Request live agent" and one flow it cannot finish, so that each of the four handover
//! triggers can be tried. Pure: the caller sends what it decides to handover.

/// The menu the bot offers (rendered as buttons).
pub const MENU: [&str; 3] = ["Track my parcel", "Return an item", "Request live agent"];

/// What the bot does with one user turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The bot's own turn (shown to the user and copied to handover's transcript).
    pub text: String,
    /// Buttons under the text.
    pub buttons: Vec<String>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// Ask handover for an agent with this trigger (the native contract's names).
    Handover(&'static str),
    /// The user stops waiting (`handover.cancel`).
    Cancel,
}

/// What the bot remembers between turns of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Turns in a row the bot did not understand.
    pub misunderstood: u32,
}

fn has(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Whole-word match, for short words such as "hi" that hide inside others ("this").
fn has_word(text: &str, words: &[&str]) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|w| words.contains(&w))
}

fn reply(text: &str, action: Action) -> Reply {
    Reply {
        text: text.to_owned(),
        buttons: Vec::new(),
        action,
    }
}

/// Decides the bot's answer to `text`. `waiting` is true while a handover is open and no agent
/// has joined: the bot keeps answering, but does not ask for a second handover.
pub fn answer(text: &str, waiting: bool, memory: &mut Memory) -> Reply {
    let t = text.trim().to_lowercase();
    let asks_agent = has(&t, &["agent", "human", "person", "someone", "medewerker"]);
    let handover = |trigger: &'static str, text: &str| {
        if waiting {
            reply(
                "You are already in the queue; an agent will join soon. Type \"stop waiting\" to cancel.",
                Action::None,
            )
        } else {
            reply(text, Action::Handover(trigger))
        }
    };
    let understood = |memory: &mut Memory, r: Reply| {
        memory.misunderstood = 0;
        r
    };
    if t == MENU[2].to_lowercase() {
        return understood(
            memory,
            handover("menu_request", "Sure, I am asking a colleague to join."),
        );
    }
    if waiting && has(&t, &["stop waiting", "cancel", "never mind", "nevermind"]) {
        return understood(
            memory,
            reply("OK, I cancelled your request for an agent.", Action::Cancel),
        );
    }
    if asks_agent {
        return understood(memory, handover("explicit_request", "Let me find an agent for you."));
    }
    if has(&t, &["menu", "help", "options"]) {
        return understood(
            memory,
            Reply {
                text: "Here is what I can do:".to_owned(),
                buttons: MENU.iter().map(|s| s.to_string()).collect(),
                action: Action::None,
            },
        );
    }
    if has(&t, &["return", "refund", "retour"]) {
        return understood(
            memory,
            handover(
                "unsupported_flow",
                "Returns are something I cannot handle here. I am passing you to a colleague.",
            ),
        );
    }
    if has(&t, &["parcel", "order", "track", "pakket"]) {
        return understood(
            memory,
            reply(
                "Parcel A-1 left our warehouse yesterday and should arrive tomorrow.",
                Action::None,
            ),
        );
    }
    if has_word(&t, &["hello", "hi", "hey", "hallo", "morning"]) {
        return understood(
            memory,
            reply(
                "Hello! I am the demo bot. Ask me about your parcel, type \"menu\", or ask for an agent.",
                Action::None,
            ),
        );
    }
    if has(&t, &["thank", "bedankt", "merci"]) {
        return understood(memory, reply("You are welcome!", Action::None));
    }
    memory.misunderstood += 1;
    if memory.misunderstood >= 2 {
        memory.misunderstood = 0;
        return handover(
            "not_understood",
            "I still do not understand, sorry. I am asking a colleague to help.",
        );
    }
    reply(
        "Sorry, I did not understand that. Try \"menu\", or ask about your parcel.",
        Action::None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(text: &str, memory: &mut Memory) -> Option<&'static str> {
        match answer(text, false, memory).action {
            Action::Handover(t) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn each_of_the_four_triggers_can_be_reached() {
        let m = &mut Memory::default();
        assert_eq!(trigger("Can I talk to an agent?", m), Some("explicit_request"));
        assert_eq!(trigger("Request live agent", m), Some("menu_request"));
        assert_eq!(trigger("I want to return my shoes", m), Some("unsupported_flow"));
        assert_eq!(trigger("blorp", m), None);
        assert_eq!(trigger("zzz", m), Some("not_understood"));
    }

    #[test]
    fn the_menu_offers_a_live_agent() {
        let r = answer("menu", false, &mut Memory::default());
        assert_eq!(r.action, Action::None);
        assert!(r.buttons.iter().any(|b| b == "Request live agent"));
    }

    #[test]
    fn an_understood_turn_resets_the_fallback_count() {
        let m = &mut Memory::default();
        assert_eq!(trigger("blorp", m), None);
        assert_eq!(trigger("where is my parcel", m), None);
        assert_eq!(trigger("blorp", m), None);
        assert_eq!(m.misunderstood, 1);
    }

    #[test]
    fn a_greeting_is_a_whole_word() {
        assert!(
            answer("Hi there", false, &mut Memory::default())
                .text
                .starts_with("Hello!")
        );
        assert!(
            !answer("this thing", false, &mut Memory::default())
                .text
                .starts_with("Hello!")
        );
    }

    #[test]
    fn while_waiting_the_bot_answers_and_can_cancel_but_does_not_ask_twice() {
        let m = &mut Memory::default();
        let r = answer("Where is my parcel?", true, m);
        assert!(r.text.contains("Parcel A-1"));
        assert_eq!(answer("agent please", true, m).action, Action::None);
        assert_eq!(answer("stop waiting", true, m).action, Action::Cancel);
        assert_eq!(answer("cancel", false, m).action, Action::None);
    }
}
