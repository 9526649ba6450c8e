//! Reading a typed reply as an answer, the way a person would: a reply
//! whose first words answer ("Não, infelizmente", "Sim! Estarei lá",
//! "I'll be there", "Claro que sí") counts, unless the rest takes it back
//! or hedges it ("No idea yet", "Yes but only if…", "Sí, si puedo") or asks
//! something ("Yes! Can I bring my son?"). Anything else is not an answer:
//! it is kept for the organizer to read. A wrong answer is worse than
//! none, so every doubt reads as none. The phrases come from a corpus of
//! replies in English, Portuguese and Spanish (`reading/corpus.tsv`), whose
//! test reports the rule's precision and recall.

use super::rsvp::Answer;

/// Answers a reply may open with, longest first where they overlap; words
/// folded (no accents, lowercase, apostrophes dropped: "I'll" is "ill").
const PHRASES: &[(&str, Answer)] = &[
    // English
    ("yes", Answer::Yes),
    ("yeah", Answer::Yes),
    ("yep", Answer::Yes),
    ("yup", Answer::Yes),
    ("y", Answer::Yes),
    ("sure", Answer::Yes),
    ("of course", Answer::Yes),
    ("absolutely", Answer::Yes),
    ("definitely", Answer::Yes),
    ("certainly", Answer::Yes),
    ("count me in", Answer::Yes),
    ("count us in", Answer::Yes),
    ("ill be there", Answer::Yes),
    ("i will be there", Answer::Yes),
    ("well be there", Answer::Yes),
    ("we will be there", Answer::Yes),
    ("see you there", Answer::Yes),
    ("wouldnt miss it", Answer::Yes),
    ("im coming", Answer::Yes),
    ("i am coming", Answer::Yes),
    ("were coming", Answer::Yes),
    ("we are coming", Answer::Yes),
    ("ill come", Answer::Yes),
    ("i will come", Answer::Yes),
    ("i accept", Answer::Yes),
    ("confirmed", Answer::Yes),
    ("no problem", Answer::Yes),
    ("no", Answer::No),
    ("n", Answer::No),
    ("nope", Answer::No),
    ("sorry", Answer::No),
    ("unfortunately", Answer::No),
    ("regretfully", Answer::No),
    ("i cant", Answer::No),
    ("i cannot", Answer::No),
    ("we cant", Answer::No),
    ("cant make it", Answer::No),
    ("cannot make it", Answer::No),
    ("i wont be able", Answer::No),
    ("wont be able", Answer::No),
    ("i wont make it", Answer::No),
    ("not coming", Answer::No),
    ("im not coming", Answer::No),
    ("i must decline", Answer::No),
    ("maybe", Answer::Maybe),
    ("perhaps", Answer::Maybe),
    ("possibly", Answer::Maybe),
    ("i might", Answer::Maybe),
    // Portuguese
    ("sim", Answer::Yes),
    ("s", Answer::Yes),
    ("claro", Answer::Yes),
    ("com certeza", Answer::Yes),
    ("estarei la", Answer::Yes),
    ("estaremos la", Answer::Yes),
    ("vou", Answer::Yes),
    ("eu vou", Answer::Yes),
    ("nos vamos", Answer::Yes),
    ("confirmo", Answer::Yes),
    ("confirmado", Answer::Yes),
    ("confirmada", Answer::Yes),
    ("confirmadissimo", Answer::Yes),
    ("presente", Answer::Yes),
    ("pode contar comigo", Answer::Yes),
    ("conta comigo", Answer::Yes),
    ("contem comigo", Answer::Yes),
    ("nao vejo a hora", Answer::Yes),
    ("sem problema", Answer::Yes),
    ("sem problemas", Answer::Yes),
    ("nao", Answer::No),
    ("infelizmente", Answer::No),
    ("nao vou", Answer::No),
    ("nao posso", Answer::No),
    ("nao poderei", Answer::No),
    ("nao vou poder", Answer::No),
    ("nao consigo", Answer::No),
    ("nao vai dar", Answer::No),
    ("nao da", Answer::No),
    ("lamento", Answer::No),
    ("sinto muito", Answer::No),
    ("talvez", Answer::Maybe),
    ("quem sabe", Answer::Maybe),
    // Spanish
    ("si", Answer::Yes),
    ("claro que si", Answer::Yes),
    ("por supuesto", Answer::Yes),
    ("desde luego", Answer::Yes),
    ("alli estare", Answer::Yes),
    ("ahi estare", Answer::Yes),
    ("alla estare", Answer::Yes),
    ("alli estaremos", Answer::Yes),
    ("ahi estaremos", Answer::Yes),
    ("cuenta conmigo", Answer::Yes),
    ("cuenten conmigo", Answer::Yes),
    ("voy", Answer::Yes),
    ("asistire", Answer::Yes),
    ("asistiremos", Answer::Yes),
    ("con gusto", Answer::Yes),
    ("no hay problema", Answer::Yes),
    ("sin problema", Answer::Yes),
    ("lamentablemente", Answer::No),
    ("desafortunadamente", Answer::No),
    ("no puedo", Answer::No),
    ("no podre", Answer::No),
    ("no podremos", Answer::No),
    ("no voy", Answer::No),
    ("no asistire", Answer::No),
    ("lo siento", Answer::No),
    ("imposible", Answer::No),
    ("quizas", Answer::Maybe),
    ("quiza", Answer::Maybe),
    ("tal vez", Answer::Maybe),
    ("a lo mejor", Answer::Maybe),
];

/// Words that make the rest of a reply a condition, a doubt or a question
/// for the organizer ("but", "if", "depends", "not sure", "yet").
const HEDGES: &[&str] = &[
    // English
    "but",
    "though",
    "although",
    "if",
    "unless",
    "depends",
    "depending",
    "not sure",
    "idea",
    "no idea",
    "know",
    "yet",
    "probably",
    "might",
    "maybe",
    "perhaps",
    "let you know",
    "try",
    // Portuguese
    "mas",
    "porem",
    "se",
    "caso",
    "depende",
    "nao sei",
    "sei",
    "ainda",
    "acho",
    "talvez",
    "quem sabe",
    "tentar",
    "ver",
    // Spanish
    "pero",
    "no se",
    "todavia",
    "aun",
    "creo",
    "si",
    "quizas",
    "quiza",
    "tal vez",
    "a lo mejor",
    "intentar",
    "intentare",
];

/// Words a reply may open with before its answer: greetings and thanks.
const OPENERS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "thanks",
    "thank you",
    "thanks for the invitation",
    "thank you for the invitation",
    "thanks for the invite",
    "thank you for the invite",
    "good morning",
    "good afternoon",
    "good evening",
    "oi",
    "ola",
    "bom dia",
    "boa tarde",
    "boa noite",
    "obrigado",
    "obrigada",
    "obrigado pelo convite",
    "obrigada pelo convite",
    "hola",
    "buenas",
    "buenos dias",
    "buenas tardes",
    "buenas noches",
    "gracias",
    "muchas gracias",
    "gracias por la invitacion",
    "muchas gracias por la invitacion",
];

/// The reply's words: letters and digits, accents folded, lowercase, an
/// apostrophe joining its word ("can't" is "cant").
fn words(text: &str) -> Vec<String> {
    let kept: String = text
        .chars()
        .filter(|c| !matches!(c, '\'' | '’' | '`'))
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    deunicode::deunicode(&kept)
        .to_lowercase()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Whether `phrase` (space-separated words) is at `at` in `words`.
fn phrase_at(words: &[String], at: usize, phrase: &str) -> Option<usize> {
    let parts: Vec<&str> = phrase.split(' ').collect();
    let end = at + parts.len();
    (end <= words.len() && words[at..end].iter().zip(&parts).all(|(w, p)| w == p))
        .then_some(parts.len())
}

/// The longest answer phrase at `at`: its answer and length in words.
fn answer_at(words: &[String], at: usize) -> Option<(Answer, usize)> {
    PHRASES
        .iter()
        .filter_map(|(phrase, answer)| phrase_at(words, at, phrase).map(|n| (*answer, n)))
        .max_by_key(|(_, n)| *n)
}

fn any_at(words: &[String], at: usize, phrases: &[&str]) -> Option<usize> {
    phrases.iter().filter_map(|p| phrase_at(words, at, p)).max()
}

/// A typed reply as an answer, when it surely is one.
pub fn read(text: &str) -> Option<Answer> {
    let words = words(text);
    // Greetings and thanks first ("Oi! Sim, estarei lá").
    let mut at = 0;
    while let Some(n) = any_at(&words, at, OPENERS) {
        at += n;
    }
    let (answer, n) = answer_at(&words, at)?;
    // "Não sei", "no sé", "no idea": a doubt that opens like a no.
    if any_at(&words, at, HEDGES).is_some_and(|h| h > n) {
        return None;
    }
    let mut rest = at + n;
    // The same words again and nothing else ("sim sim", "sí, sí"); in
    // "sí, si puedo" the second is an "if", read below.
    let mut again = rest;
    while again + n <= words.len() && words[again..again + n] == words[at..at + n] {
        again += n;
    }
    if again == words.len() {
        rest = again;
    }
    let said_alone = rest == words.len();
    // A question is for the organizer; "Quizás?" alone is still a maybe.
    if text.contains('?') && !(said_alone && answer == Answer::Maybe) {
        return None;
    }
    // The rest must not hedge the answer or give another.
    let mut i = rest;
    while i < words.len() {
        if any_at(&words, i, HEDGES).is_some() {
            return None;
        }
        match answer_at(&words, i) {
            Some((other, _)) if other != answer => return None,
            Some((_, n)) => i += n,
            None => i += 1,
        }
    }
    Some(answer)
}

#[cfg(test)]
mod tests;
