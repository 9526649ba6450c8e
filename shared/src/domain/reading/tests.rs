//! The rule against its corpus: no reply read wrongly (precision 1), and
//! most answers read (recall), reported by the test.

use super::*;

const CORPUS: &str = include_str!("corpus.tsv");
const HELD_OUT: &str = include_str!("held_out.tsv");

/// (replies, answers among them, answers read right, answers read, wrong readings, missed).
fn measure(corpus: &str) -> (usize, usize, usize, usize, Vec<String>, Vec<String>) {
    let (mut replies, mut answers, mut right, mut given) = (0, 0, 0, 0);
    let (mut wrong, mut missed) = (Vec::new(), Vec::new());
    for line in corpus.lines().filter(|l| !l.starts_with('#')) {
        let (want, text) = line.split_once('\t').expect("reading<TAB>reply");
        let want = expected(want);
        replies += 1;
        answers += usize::from(want.is_some());
        match read(text) {
            Some(got) => {
                given += 1;
                if Some(got) == want {
                    right += 1;
                } else {
                    wrong.push(format!("{text:?} read {got:?}, is {want:?}"));
                }
            }
            None if want.is_some() => missed.push(text.to_owned()),
            None => {}
        }
    }
    (replies, answers, right, given, wrong, missed)
}

fn expected(word: &str) -> Option<Answer> {
    match word {
        "-" => None,
        other => Some(other.parse().expect("yes, no, maybe or -")),
    }
}

#[test]
fn the_corpus_is_read_without_a_wrong_answer_and_most_answers_read() {
    let (replies, answers, right, given, wrong, missed) = measure(CORPUS);
    let precision = right as f64 / given.max(1) as f64;
    let recall = right as f64 / answers.max(1) as f64;
    println!(
        "corpus: {replies} replies, {answers} answers: precision {precision:.3} ({right} of {given} read), recall {recall:.3}; missed: {missed:?}"
    );
    assert!(replies >= 80, "a corpus of at least 80 replies");
    assert!(wrong.is_empty(), "read wrongly: {wrong:#?}");
    assert!(recall >= 0.95, "recall {recall:.3}; missed: {missed:?}");
}

#[test]
fn replies_the_rule_was_not_built_from_are_never_read_wrongly() {
    let (replies, answers, right, given, wrong, missed) = measure(HELD_OUT);
    let precision = right as f64 / given.max(1) as f64;
    let recall = right as f64 / answers.max(1) as f64;
    println!(
        "held out: {replies} replies, {answers} answers: precision {precision:.3} ({right} of {given} read), recall {recall:.3}; missed: {missed:?}"
    );
    assert!(wrong.is_empty(), "read wrongly: {wrong:#?}");
}

#[test]
fn a_question_after_an_answer_is_for_the_organizer() {
    assert_eq!(read("Sim!"), Some(Answer::Yes));
    assert_eq!(read("Sim! Posso levar meu filho?"), None);
}
