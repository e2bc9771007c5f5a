import Testing
@testable import CairnCore

// MARK: - Helpers

private func clause(
    _ entity: FilterEntity, _ key: String, _ comparator: FilterComparator, _ value: FilterValue
) -> FilterExpression {
    .comparison(FilterComparison(FilterIdentifier(entity, key), comparator, value))
}

private func num(_ text: String) -> FilterValue {
    .number(Double(text)!, text: text)
}

private let a = clause(.metric, "a", .greater, num("1"))
private let b = clause(.metric, "b", .greater, num("2"))
private let c = clause(.metric, "c", .greater, num("3"))
private let d = clause(.metric, "d", .greater, num("4"))

private func filterError(_ text: String, _ target: SearchTarget) -> CairnError? {
    do {
        _ = try SearchFilterParser.parse(text, for: target)
        return nil
    } catch {
        return error
    }
}

private func orderByError(_ text: String, _ target: SearchTarget) -> CairnError? {
    do {
        _ = try OrderByParser.parse(text, for: target)
        return nil
    } catch {
        return error
    }
}

/// Checks the error is INVALID_PARAMETER_VALUE, quotes the input, and mentions every fragment.
private func expectError(
    _ error: CairnError?, prefix: String, fragments: [String], sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let error = try #require(error, "expected an error", sourceLocation: sourceLocation)
    #expect(error.code == .invalidParameterValue, sourceLocation: sourceLocation)
    #expect(error.message.hasPrefix(prefix), "\(error.message)", sourceLocation: sourceLocation)
    #expect(error.message.hasSuffix("."), "\(error.message)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
    }
}

// MARK: - MLflow forms

@Suite("Search filter parser: MLflow forms")
struct MLflowFormTests {
    @Test("An empty or all-whitespace filter parses to nil", arguments: ["", " ", "   ", "\n\t  "])
    func emptyFilter(text: String) throws {
        #expect(try SearchFilterParser.parse(text, for: .runs) == nil)
        #expect(try SearchFilterParser.parse(text, for: .experiments) == nil)
    }

    @Test("Every entity prefix and its aliases resolve to the right entity", arguments: [
        ("metrics.loss < 0.5", clause(.metric, "loss", .less, num("0.5"))),
        ("metric.loss < 0.5", clause(.metric, "loss", .less, num("0.5"))),
        ("METRICS.loss < 0.5", clause(.metric, "loss", .less, num("0.5"))),
        ("params.model = 'cnn'", clause(.param, "model", .equal, .string("cnn"))),
        ("param.model = 'cnn'", clause(.param, "model", .equal, .string("cnn"))),
        ("parameter.model = 'cnn'", clause(.param, "model", .equal, .string("cnn"))),
        ("Parameters.model = 'cnn'", clause(.param, "model", .equal, .string("cnn"))),
        ("tags.team = 'ml'", clause(.tag, "team", .equal, .string("ml"))),
        ("tag.team = 'ml'", clause(.tag, "team", .equal, .string("ml"))),
        ("attributes.status = 'FINISHED'", clause(.attribute, "status", .equal, .string("FINISHED"))),
        ("attribute.status = 'FINISHED'", clause(.attribute, "status", .equal, .string("FINISHED"))),
        ("attr.status = 'FINISHED'", clause(.attribute, "status", .equal, .string("FINISHED"))),
        ("run.status = 'FINISHED'", clause(.attribute, "status", .equal, .string("FINISHED"))),
        ("status = 'FINISHED'", clause(.attribute, "status", .equal, .string("FINISHED"))),
        ("datasets.name = 'train'", clause(.dataset, "name", .equal, .string("train"))),
        ("dataset.digest = 'abc'", clause(.dataset, "digest", .equal, .string("abc"))),
    ])
    func prefixes(text: String, expected: FilterExpression) throws {
        #expect(try SearchFilterParser.parse(text, for: .runs) == expected)
    }

    @Test("Keys may be dotted, backtick-quoted, double-quoted or contain - / :", arguments: [
        ("tags.mlflow.runName = 'x'", clause(.tag, "mlflow.runName", .equal, .string("x"))),
        ("tags.`mlflow.prompt.is_prompt` = 'true'", clause(.tag, "mlflow.prompt.is_prompt", .equal, .string("true"))),
        ("metrics.\"my metric\" > 1", clause(.metric, "my metric", .greater, num("1"))),
        ("metrics.`error rate` <= 0.1", clause(.metric, "error rate", .lessOrEqual, num("0.1"))),
        ("params.\"model-type\" = 'a'", clause(.param, "model-type", .equal, .string("a"))),
        ("metrics.val/loss-1:x >= 2", clause(.metric, "val/loss-1:x", .greaterOrEqual, num("2"))),
        ("metrics.1st_epoch < 3", clause(.metric, "1st_epoch", .less, num("3"))),
        ("`run name` = 'x'", clause(.attribute, "run_name", .equal, .string("x"))),
        ("\"run name\" = 'x'", clause(.attribute, "run_name", .equal, .string("x"))),
        ("`Run Name` = 'x'", clause(.attribute, "run_name", .equal, .string("x"))),
        ("attributes.`run_id` = 'x'", clause(.attribute, "run_id", .equal, .string("x"))),
    ])
    func keys(text: String, expected: FilterExpression) throws {
        #expect(try SearchFilterParser.parse(text, for: .runs) == expected)
    }

    @Test("Every comparator parses, keywords case-insensitively, with <> meaning !=", arguments: [
        ("metrics.a = 1", clause(.metric, "a", .equal, num("1"))),
        ("metrics.a != 1", clause(.metric, "a", .notEqual, num("1"))),
        ("metrics.a <> 1", clause(.metric, "a", .notEqual, num("1"))),
        ("metrics.a < 1", clause(.metric, "a", .less, num("1"))),
        ("metrics.a <= 1", clause(.metric, "a", .lessOrEqual, num("1"))),
        ("metrics.a > 1", clause(.metric, "a", .greater, num("1"))),
        ("metrics.a >= 1", clause(.metric, "a", .greaterOrEqual, num("1"))),
        ("params.p LIKE '%a%'", clause(.param, "p", .like, .string("%a%"))),
        ("params.p like '%a%'", clause(.param, "p", .like, .string("%a%"))),
        ("params.p ILIKE '%A%'", clause(.param, "p", .ilike, .string("%A%"))),
        ("params.p iLike '%A%'", clause(.param, "p", .ilike, .string("%A%"))),
        ("run_id IN ('a', \"b\")", clause(.attribute, "run_id", .in, .list(["a", "b"]))),
        ("run_id in ('a')", clause(.attribute, "run_id", .in, .list(["a"]))),
        ("run_id NOT IN ('a','b' , 'c')", clause(.attribute, "run_id", .notIn, .list(["a", "b", "c"]))),
        ("run_id not   in ('a')", clause(.attribute, "run_id", .notIn, .list(["a"]))),
        ("tags.x IS NULL", clause(.tag, "x", .isNull, .none)),
        ("tags.x is null", clause(.tag, "x", .isNull, .none)),
        ("tags.x IS NOT NULL", clause(.tag, "x", .isNotNull, .none)),
        ("params.x Is Not Null", clause(.param, "x", .isNotNull, .none)),
    ])
    func comparators(text: String, expected: FilterExpression) throws {
        #expect(try SearchFilterParser.parse(text, for: .runs) == expected)
    }

    @Test("Numbers keep their literal text: ints, decimals, negatives, exponents", arguments: [
        ("10", 10.0), ("-1", -1.0), ("0.5", 0.5), ("-0.25", -0.25), (".5", 0.5), ("1.", 1.0),
        ("1e-3", 0.001), ("2.5E+2", 250.0), ("+3", 3.0), ("-.5", -0.5), ("9007199254740993", 9007199254740993.0),
    ])
    func numbers(literal: String, value: Double) throws {
        let parsed = try SearchFilterParser.parse("metrics.m > \(literal)", for: .runs)
        #expect(parsed == clause(.metric, "m", .greater, .number(value, text: literal)))
    }

    @Test("Strings may use single or double quotes, keep inner text verbatim, and may be empty", arguments: [
        ("'cnn'", "cnn"), ("\"cnn\"", "cnn"), ("'say \"hi\"'", "say \"hi\""), ("\"it's\"", "it's"),
        ("' padded '", " padded "), ("''", ""), ("'a AND b OR (c)'", "a AND b OR (c)"), ("'back\\slash'", "back\\slash"),
    ])
    func strings(literal: String, value: String) throws {
        let parsed = try SearchFilterParser.parse("params.p = \(literal)", for: .runs)
        #expect(parsed == clause(.param, "p", .equal, .string(value)))
    }

    @Test("Clauses joined by AND (any case) make a flat .and list")
    func andChain() throws {
        let parsed = try SearchFilterParser.parse(
            "metrics.a > 1 and params.b = 'x' AnD tags.c != \"y\"", for: .runs)
        #expect(parsed == .and([
            a,
            clause(.param, "b", .equal, .string("x")),
            clause(.tag, "c", .notEqual, .string("y")),
        ]))
    }

    @Test("Whitespace is optional around operators and free elsewhere")
    func whitespace() throws {
        #expect(try SearchFilterParser.parse("metrics.a>1", for: .runs) == a)
        #expect(try SearchFilterParser.parse("metrics.a>=-1", for: .runs)
            == clause(.metric, "a", .greaterOrEqual, num("-1")))
        #expect(try SearchFilterParser.parse("params.p='x'", for: .runs)
            == clause(.param, "p", .equal, .string("x")))
        #expect(try SearchFilterParser.parse("  metrics.a \t>\n 1  AND\nmetrics.b > 2 ", for: .runs) == .and([a, b]))
        #expect(try SearchFilterParser.parse("run_id IN('a','b')", for: .runs)
            == clause(.attribute, "run_id", .in, .list(["a", "b"])))
    }

    @Test("Run attributes are canonicalised, created and Created becoming start_time", arguments: [
        ("run_id = 'r'", clause(.attribute, "run_id", .equal, .string("r"))),
        ("run_name = 'n'", clause(.attribute, "run_name", .equal, .string("n"))),
        ("status != 'FAILED'", clause(.attribute, "status", .notEqual, .string("FAILED"))),
        ("user_id LIKE 'a%'", clause(.attribute, "user_id", .like, .string("a%"))),
        ("artifact_uri ILIKE '%s3%'", clause(.attribute, "artifact_uri", .ilike, .string("%s3%"))),
        ("lifecycle_stage = 'active'", clause(.attribute, "lifecycle_stage", .equal, .string("active"))),
        ("start_time >= 1700000000000", clause(.attribute, "start_time", .greaterOrEqual, num("1700000000000"))),
        ("created > 5", clause(.attribute, "start_time", .greater, num("5"))),
        ("attributes.Created < 5", clause(.attribute, "start_time", .less, num("5"))),
        ("end_time != -1", clause(.attribute, "end_time", .notEqual, num("-1"))),
        ("datasets.context IN ('train', 'eval')", clause(.dataset, "context", .in, .list(["train", "eval"]))),
        ("datasets.name NOT IN ('a')", clause(.dataset, "name", .notIn, .list(["a"]))),
        ("datasets.digest ILIKE 'ab%'", clause(.dataset, "digest", .ilike, .string("ab%"))),
    ])
    func runAttributes(text: String, expected: FilterExpression) throws {
        #expect(try SearchFilterParser.parse(text, for: .runs) == expected)
    }

    @Test("Experiment filters accept name, experiment_id, times and tags", arguments: [
        ("name = 'exp'", clause(.attribute, "name", .equal, .string("exp"))),
        ("attributes.name LIKE 'exp%'", clause(.attribute, "name", .like, .string("exp%"))),
        ("name ILIKE '%X%'", clause(.attribute, "name", .ilike, .string("%X%"))),
        ("name IN ('a', 'b')", clause(.attribute, "name", .in, .list(["a", "b"]))),
        ("name NOT IN ('a')", clause(.attribute, "name", .notIn, .list(["a"]))),
        ("experiment_id = '1'", clause(.attribute, "experiment_id", .equal, .string("1"))),
        ("experiment_id IN ('1', '2')", clause(.attribute, "experiment_id", .in, .list(["1", "2"]))),
        ("creation_time > 100", clause(.attribute, "creation_time", .greater, num("100"))),
        ("last_update_time <= 5", clause(.attribute, "last_update_time", .lessOrEqual, num("5"))),
        ("tags.team = 'ml'", clause(.tag, "team", .equal, .string("ml"))),
        ("tags.`a b` IS NULL", clause(.tag, "a b", .isNull, .none)),
    ])
    func experimentFilters(text: String, expected: FilterExpression) throws {
        #expect(try SearchFilterParser.parse(text, for: .experiments) == expected)
    }
}

// MARK: - Extension: OR, NOT, parentheses

@Suite("Search filter parser: OR, NOT and parentheses")
struct BooleanExtensionTests {
    @Test("OR, NOT, parentheses and precedence NOT > AND > OR", arguments: [
        ("metrics.a > 1 OR metrics.b > 2", FilterExpression.or([a, b])),
        ("metrics.a > 1 or metrics.b > 2 Or metrics.c > 3", .or([a, b, c])),
        ("metrics.a > 1 AND metrics.b > 2 OR metrics.c > 3", .or([.and([a, b]), c])),
        ("metrics.a > 1 OR metrics.b > 2 AND metrics.c > 3", .or([a, .and([b, c])])),
        ("metrics.a > 1 OR metrics.b > 2 AND metrics.c > 3 OR metrics.d > 4", .or([a, .and([b, c]), d])),
        ("NOT metrics.a > 1", .not(a)),
        ("not metrics.a > 1 AND metrics.b > 2", .and([.not(a), b])),
        ("NOT metrics.a > 1 OR metrics.b > 2", .or([.not(a), b])),
        ("NOT (metrics.a > 1 OR metrics.b > 2)", .not(.or([a, b]))),
        ("NOT(metrics.a > 1)", .not(a)),
        ("NOT NOT metrics.a > 1", .not(.not(a))),
        ("(metrics.a > 1 OR metrics.b > 2) AND metrics.c > 3", .and([.or([a, b]), c])),
        ("metrics.a > 1 AND (metrics.b > 2 OR metrics.c > 3)", .and([a, .or([b, c])])),
        ("(metrics.a > 1)", a),
        ("((metrics.a > 1))", a),
        ("( metrics.a > 1 )AND(metrics.b > 2)", .and([a, b])),
    ])
    func precedence(text: String, expected: FilterExpression) throws {
        #expect(try SearchFilterParser.parse(text, for: .runs) == expected)
    }

    @Test("Nested AND and OR groups are flattened", arguments: [
        ("metrics.a > 1 AND (metrics.b > 2 AND metrics.c > 3)", FilterExpression.and([a, b, c])),
        ("(metrics.a > 1 AND metrics.b > 2) AND metrics.c > 3", .and([a, b, c])),
        ("(metrics.a > 1 AND metrics.b > 2) AND (metrics.c > 3 AND metrics.d > 4)", .and([a, b, c, d])),
        ("metrics.a > 1 OR (metrics.b > 2 OR metrics.c > 3)", .or([a, b, c])),
        ("((metrics.a > 1 OR metrics.b > 2)) OR metrics.c > 3", .or([a, b, c])),
        ("NOT (metrics.a > 1 AND metrics.b > 2) AND metrics.c > 3", .and([.not(.and([a, b])), c])),
    ])
    func flattening(text: String, expected: FilterExpression) throws {
        #expect(try SearchFilterParser.parse(text, for: .runs) == expected)
    }

    @Test("Parentheses after IN and NOT IN are a value list, not a group")
    func inListIsNotAGroup() throws {
        let parsed = try SearchFilterParser.parse(
            "(run_id IN ('a', 'b') OR NOT run_id NOT IN ('c')) AND status = 'RUNNING'", for: .runs)
        #expect(parsed == .and([
            .or([
                clause(.attribute, "run_id", .in, .list(["a", "b"])),
                .not(clause(.attribute, "run_id", .notIn, .list(["c"]))),
            ]),
            clause(.attribute, "status", .equal, .string("RUNNING")),
        ]))
    }

    @Test("Keywords inside quoted strings and keys are not operators")
    func keywordsInsideQuotes() throws {
        let parsed = try SearchFilterParser.parse("tags.`and` = 'x OR y' OR tags.notes = \"NOT (z)\"", for: .runs)
        #expect(parsed == .or([
            clause(.tag, "and", .equal, .string("x OR y")),
            clause(.tag, "notes", .equal, .string("NOT (z)")),
        ]))
    }

    @Test("Validation applies inside OR, NOT and parentheses")
    func validationInsideGroups() throws {
        try expectError(
            filterError("metrics.a > 1 OR NOT (params.lr = 0.1)", .runs),
            prefix: "Invalid filter ", fragments: ["must be a quoted string", "found the number 0.1 at position 35"])
    }
}

// MARK: - Syntax errors

@Suite("Search filter parser: syntax errors")
struct SyntaxErrorTests {
    @Test("A missing value names the comparator and the position")
    func missingValueMessage() throws {
        let error = try #require(filterError("metrics.loss >", .runs))
        #expect(error.code == .invalidParameterValue)
        #expect(error.message == "Invalid filter 'metrics.loss >': expected a value after '>' at position 15.")
    }

    @Test("Syntax errors say what was wrong and where", arguments: [
        // Missing pieces.
        ("metrics.a", ["expected a comparator after 'metrics.a' at position 10"]),
        ("metrics.a ~ 1", ["expected a comparator after 'metrics.a' at position 11", "found '~'"]),
        ("metrics.a >)", ["expected a value after '>' at position 12", "found ')'"]),
        ("= 1", ["expected a clause at position 1", "found '='"]),
        ("'status' = 'x'", ["expected a clause at position 1", "found ''status''"]),
        ("metrics. > 1", ["expected a key after 'metrics.' at position 9"]),
        ("tags.\"\" = 'x'", ["empty key after 'tags.' at position 6"]),
        ("`` = 'x'", ["empty identifier at position 1"]),
        // Unterminated quotes.
        ("params.a = 'abc", ["unterminated string", "quote at position 12"]),
        ("params.a = \"abc", ["unterminated string", "quote at position 12"]),
        ("tags.`abc = 'x'", ["unterminated identifier", "quote at position 6"]),
        ("run_id IN ('a', 'b)", ["unterminated string", "position 17"]),
        // Unknown comparators.
        ("metrics.a == 1", ["unknown comparator '==' at position 11"]),
        ("metrics.a =< 1", ["unknown comparator '=<' at position 11"]),
        ("metrics.a ! 1", ["unknown comparator '!' at position 11"]),
        ("params.a CONTAINS 'x'", ["unknown comparator 'CONTAINS' after 'params.a' at position 10"]),
        ("tags.a NOT LIKE 'x'", ["expected IN after 'NOT' at position 12", "found 'LIKE'"]),
        ("tags.a IS 'x'", ["expected NULL or NOT NULL after 'IS' at position 11"]),
        ("tags.a IS NOT", ["expected NULL after 'IS NOT' at position 14"]),
        // Values.
        ("params.a = abc", ["unquoted value 'abc' after '=' at position 12", "quotes"]),
        ("status = FINISHED", ["unquoted value 'FINISHED'"]),
        ("metrics.a > 1.2.3", ["invalid number '1.2.3' at position 13"]),
        ("metrics.a > 12abc", ["invalid number '12abc' at position 13"]),
        ("metrics.a > 1'x'", ["invalid number", "position 13"]),
        ("metrics.a > -", ["expected a value after '>' at position 13", "found '-'"]),
        // IN lists.
        ("run_id IN 'a'", ["expected a parenthesised list of quoted strings after 'IN' at position 11"]),
        ("run_id NOT IN 'a'", ["after 'NOT IN' at position 15"]),
        ("run_id IN ()", ["empty list after 'IN' at position 11"]),
        ("run_id IN (  )", ["empty list after 'IN' at position 11"]),
        ("run_id IN ('a',)", ["expected a quoted string in the list after 'IN' at position 16", "found ')'"]),
        ("run_id IN ('a' 'b')", ["expected ',' or ')' in the list after 'IN' at position 16"]),
        ("run_id IN ('a'", ["unterminated list", "'(' at position 11", "expected ')' at position 15"]),
        ("run_id IN ('a',", ["unterminated list", "'(' at position 11"]),
        ("run_id IN (1, 2)", ["expected a quoted string in the list after 'IN' at position 12", "found '1'"]),
        // Prefixes.
        ("foo.bar = 'x'", ["unknown entity type 'foo' in 'foo.bar' at position 1", "metrics, params, tags"]),
        // Trailing garbage.
        ("metrics.a > 1 metrics.b < 2", ["unexpected 'metrics.b' at position 15", "expected AND, OR or the end"]),
        ("metrics.a > 1 'x'", ["unexpected ''x'' at position 15"]),
        ("params.a = 'x''y'", ["unexpected ''y'' at position 15"]),
        ("metrics.a > 1 ;", ["unexpected ';' at position 15"]),
        // Dangling AND / OR / NOT.
        ("metrics.a > 1 AND", ["expected a clause after 'AND' at position 18"]),
        ("metrics.a > 1 and  ", ["expected a clause after 'AND' at position 20"]),
        ("metrics.a > 1 OR", ["expected a clause after 'OR' at position 17"]),
        ("AND metrics.a > 1", ["expected a clause at position 1", "found 'AND'"]),
        ("OR metrics.a > 1", ["expected a clause at position 1", "found 'OR'"]),
        ("metrics.a > 1 AND AND metrics.b > 2", ["expected a clause after 'AND' at position 19", "found 'AND'"]),
        ("metrics.a > 1 AND OR metrics.b > 2", ["expected a clause after 'AND' at position 19", "found 'OR'"]),
        ("NOT", ["expected a clause after 'NOT' at position 4"]),
        ("metrics.a > 1 AND NOT", ["expected a clause after 'NOT' at position 22"]),
        // Parentheses.
        ("()", ["empty parentheses at position 1"]),
        ("metrics.a > 1 AND ( )", ["empty parentheses at position 19"]),
        ("NOT ()", ["empty parentheses at position 5"]),
        ("(metrics.a > 1", ["unbalanced parentheses", "'(' at position 1 is never closed", "expected ')' at position 15"]),
        ("((metrics.a > 1)", ["unbalanced parentheses", "'(' at position 1 is never closed"]),
        ("metrics.a > 1)", ["unbalanced parentheses: unexpected ')' at position 14"]),
        ("(metrics.a > 1))", ["unbalanced parentheses: unexpected ')' at position 16"]),
        ("(metrics.a > 1 AND)", ["expected a clause after 'AND' at position 19", "found ')'"]),
        ("(metrics.a > 1 metrics.b > 2)", ["unexpected 'metrics.b' at position 16", "expected AND, OR or ')'"]),
        (")", ["expected a clause at position 1", "found ')'"]),
        ("(", ["expected a clause after '(' at position 2"]),
    ])
    func syntaxErrors(text: String, fragments: [String]) throws {
        try expectError(filterError(text, .runs), prefix: "Invalid filter '\(text)': ", fragments: fragments)
        // Syntax is checked the same way whatever the target.
        try expectError(filterError(text, .experiments), prefix: "Invalid filter '\(text)': ", fragments: [])
    }

    @Test("Nesting is bounded so a hostile filter cannot exhaust the stack")
    func nestingLimit() throws {
        let deep = String(repeating: "(", count: 16) + "metrics.a > 1" + String(repeating: ")", count: 16)
        #expect(try SearchFilterParser.parse(deep, for: .runs) == a)
        let nots = String(repeating: "NOT ", count: 16) + "metrics.a > 1"
        #expect(try SearchFilterParser.parse(nots, for: .runs) != nil)

        let tooDeep = String(repeating: "(", count: 10_000) + "metrics.a > 1" + String(repeating: ")", count: 10_000)
        try expectError(filterError(tooDeep, .runs), prefix: "Invalid filter ",
                        fragments: ["nested more than 16 deep at position 17"])
        let tooManyNots = String(repeating: "not ", count: 10_000) + "metrics.a > 1"
        try expectError(filterError(tooManyNots, .runs), prefix: "Invalid filter ",
                        fragments: ["nested more than 16 deep at position 65"])
        let tooLong = String(repeating: "(", count: 100_000) + "metrics.a > 1" + String(repeating: ")", count: 100_000)
        try expectError(filterError(tooLong, .runs), prefix: "Invalid filter: ", fragments: ["the limit is 65536 bytes"])
    }

    @Test("Keywords are ASCII: a look-alike such as dotless-i 'ın' is not IN")
    func asciiKeywords() throws {
        try expectError(filterError("run_id ın ('a')", .runs), prefix: "Invalid filter ",
                        fragments: ["unknown comparator 'ın'"])
    }

    @Test("A syntax error anywhere wins over a validation error earlier in the filter")
    func syntaxBeforeValidation() throws {
        try expectError(
            filterError("metrics.a = 'x' AND (", .runs),
            prefix: "Invalid filter ", fragments: ["expected a clause after '(' at position 22"])
    }
}

// MARK: - Validation errors

@Suite("Search filter parser: validation per target")
struct ValidationErrorTests {
    @Test("Run filters reject wrong comparators, value types and unknown names", arguments: [
        // Metrics.
        ("metrics.a = 'x'", ["expected a number for metric 'a' at position 13", "quoted string 'x'"]),
        ("metrics.a LIKE '1'", ["comparator 'LIKE' at position 11 is not supported for metric 'a'", "=, !=, <, <=, >, >="]),
        ("metrics.a IS NULL", ["comparator 'IS NULL' at position 11 is not supported for metric 'a'"]),
        ("metrics.a IN ('1')", ["comparator 'IN' at position 11 is not supported for metric 'a'"]),
        // Params and tags.
        ("params.lr = 0.1", ["value for parameter 'lr' must be a quoted string", "position 13", "params.lr = '0.1'"]),
        ("tags.n != 3", ["value for tag 'n' must be a quoted string", "tags.n != '3'"]),
        ("tags.x > 'a'", ["comparator '>' at position 8 is not supported for tag 'x'", "=, !=, LIKE, ILIKE, IS NULL, IS NOT NULL"]),
        ("params.a IN ('x')", ["comparator 'IN' at position 10 is not supported for parameter 'a'"]),
        ("params.a NOT IN ('x')", ["comparator 'NOT IN' at position 10 is not supported for parameter 'a'"]),
        // String attributes.
        ("status = 1", ["value for attribute 'status' must be a quoted string", "status = '1'"]),
        ("status IN ('A')", ["comparator 'IN' at position 8 is not supported for attribute 'status'"]),
        ("run_name NOT IN ('A')", ["comparator 'NOT IN' at position 10 is not supported for attribute 'run_name'"]),
        ("run_id < 'x'", ["comparator '<' at position 8 is not supported for attribute 'run_id'", "IN, NOT IN"]),
        ("run_id IS NULL", ["comparator 'IS NULL' at position 8 is not supported for attribute 'run_id'"]),
        // Numeric attributes.
        ("start_time > 1.5", ["expected an integer for attribute 'start_time' at position 14", "found '1.5'"]),
        ("created > 1e3", ["expected an integer for attribute 'start_time'"]),
        ("end_time > '5'", ["expected a number for attribute 'end_time' at position 12"]),
        ("end_time LIKE '1'", ["comparator 'LIKE' at position 10 is not supported for attribute 'end_time'"]),
        ("start_time IN ('1')", ["comparator 'IN' at position 12 is not supported for attribute 'start_time'"]),
        // Unknown attributes: names are case-sensitive, and the message lists the valid ones.
        ("foo = 'x'", ["unknown attribute 'foo' at position 1",
                       "artifact_uri, end_time, lifecycle_stage, run_id, run_name, start_time, status, user_id"]),
        ("Status = 'x'", ["unknown attribute 'Status'"]),
        ("attributes.experiment_id = '1'", ["unknown attribute 'experiment_id' at position 1"]),
        ("runName = 'x'", ["unknown attribute 'runName'"]),
        ("`run  name` = 'x'", ["unknown attribute 'run  name'"]),
        // Datasets.
        ("datasets.foo = 'x'", ["unknown dataset field 'foo' at position 1", "name, digest, context"]),
        ("datasets.name > 'x'", ["comparator '>' at position 15 is not supported for dataset field 'name'"]),
        ("datasets.name = 1", ["value for dataset field 'name' must be a quoted string"]),
        ("datasets.name IS NULL", ["comparator 'IS NULL'"]),
    ])
    func runValidation(text: String, fragments: [String]) throws {
        try expectError(filterError(text, .runs), prefix: "Invalid filter '\(text)': ", fragments: fragments)
    }

    @Test("Experiment filters reject metrics, params, datasets, run attributes and bad values", arguments: [
        ("metrics.a > 1", ["experiments cannot be filtered by 'metrics.a' at position 1", "attributes", "tags"]),
        ("params.a = 'x'", ["experiments cannot be filtered by 'params.a'"]),
        ("datasets.name = 'x'", ["experiments cannot be filtered by 'datasets.name'"]),
        ("status = 'x'", ["unknown experiment attribute 'status' at position 1",
                          "creation_time, experiment_id, last_update_time, name"]),
        ("start_time > 1", ["unknown experiment attribute 'start_time'"]),
        ("experiment_id LIKE '1'", ["comparator 'LIKE' at position 15 is not supported for attribute 'experiment_id'"]),
        ("experiment_id = 1", ["value for attribute 'experiment_id' must be a quoted string", "experiment_id = '1'"]),
        ("name = 1", ["value for attribute 'name' must be a quoted string"]),
        ("name IS NULL", ["comparator 'IS NULL'"]),
        ("creation_time > 1.5", ["expected an integer for attribute 'creation_time'"]),
        ("last_update_time = 'x'", ["expected a number for attribute 'last_update_time'"]),
        ("last_update_time LIKE '1'", ["comparator 'LIKE'"]),
        ("tags.a > 'x'", ["comparator '>' at position 8 is not supported for tag 'a'"]),
        ("tags.a = 5", ["value for tag 'a' must be a quoted string"]),
    ])
    func experimentValidation(text: String, fragments: [String]) throws {
        try expectError(filterError(text, .experiments), prefix: "Invalid filter '\(text)': ", fragments: fragments)
    }
}

// MARK: - order_by

@Suite("order_by parser")
struct OrderByParserTests {
    @Test("Run order_by accepts metrics, params, tags and run attributes, ASC by default", arguments: [
        ("metrics.loss", FilterIdentifier(.metric, "loss"), true),
        ("metrics.loss DESC", FilterIdentifier(.metric, "loss"), false),
        ("metric.loss desc", FilterIdentifier(.metric, "loss"), false),
        ("metrics.loss asc", FilterIdentifier(.metric, "loss"), true),
        ("  metrics.loss   DeSc  ", FilterIdentifier(.metric, "loss"), false),
        ("metrics.`my metric` DESC", FilterIdentifier(.metric, "my metric"), false),
        ("metrics.\"my metric\" ASC", FilterIdentifier(.metric, "my metric"), true),
        ("params.lr", FilterIdentifier(.param, "lr"), true),
        ("tags.mlflow.runName DESC", FilterIdentifier(.tag, "mlflow.runName"), false),
        ("start_time DESC", FilterIdentifier(.attribute, "start_time"), false),
        ("attributes.start_time", FilterIdentifier(.attribute, "start_time"), true),
        ("created DESC", FilterIdentifier(.attribute, "start_time"), false),
        ("attribute.Created", FilterIdentifier(.attribute, "start_time"), true),
        ("end_time", FilterIdentifier(.attribute, "end_time"), true),
        ("run_id", FilterIdentifier(.attribute, "run_id"), true),
        ("run_name", FilterIdentifier(.attribute, "run_name"), true),
        ("`run name` DESC", FilterIdentifier(.attribute, "run_name"), false),
        ("status", FilterIdentifier(.attribute, "status"), true),
        ("user_id", FilterIdentifier(.attribute, "user_id"), true),
        ("artifact_uri", FilterIdentifier(.attribute, "artifact_uri"), true),
        ("experiment_id", FilterIdentifier(.attribute, "experiment_id"), true),
    ])
    func runOrderBy(text: String, identifier: FilterIdentifier, ascending: Bool) throws {
        #expect(try OrderByParser.parse(text, for: .runs) == OrderByClause(identifier, ascending: ascending))
    }

    @Test("Experiment order_by accepts name, experiment_id and the time columns, prefix optional", arguments: [
        ("name", FilterIdentifier(.attribute, "name"), true),
        ("name DESC", FilterIdentifier(.attribute, "name"), false),
        ("attributes.name desc", FilterIdentifier(.attribute, "name"), false),
        ("\"name\" ASC", FilterIdentifier(.attribute, "name"), true),
        ("experiment_id", FilterIdentifier(.attribute, "experiment_id"), true),
        ("creation_time DESC", FilterIdentifier(.attribute, "creation_time"), false),
        ("attr.last_update_time", FilterIdentifier(.attribute, "last_update_time"), true),
    ])
    func experimentOrderBy(text: String, identifier: FilterIdentifier, ascending: Bool) throws {
        #expect(try OrderByParser.parse(text, for: .experiments) == OrderByClause(identifier, ascending: ascending))
    }

    @Test("Bad run order_by clauses are rejected, naming the clause", arguments: [
        ("", ["the clause is empty"]),
        ("   ", ["the clause is empty"]),
        ("foo", ["cannot order runs by attribute 'foo' at position 1", "artifact_uri", "start_time"]),
        ("lifecycle_stage", ["cannot order runs by attribute 'lifecycle_stage'"]),
        ("Status DESC", ["cannot order runs by attribute 'Status'"]),
        ("datasets.name", ["cannot order runs by 'datasets.name'"]),
        ("bad.prefix", ["unknown entity type 'bad'"]),
        ("metrics.", ["expected a key after 'metrics.' at position 9"]),
        ("metrics.loss DOWN", ["expected ASC or DESC after 'metrics.loss' at position 14", "found 'DOWN'"]),
        ("metrics.loss DESC extra", ["unexpected 'extra' at position 19"]),
        ("metrics.loss, params.lr", ["expected ASC or DESC after 'metrics.loss' at position 13", "found ','"]),
        ("metrics.`loss DESC", ["unterminated identifier"]),
        ("= x", ["expected a column", "position 1"]),
    ])
    func runOrderByErrors(text: String, fragments: [String]) throws {
        try expectError(orderByError(text, .runs), prefix: "Invalid order_by clause '\(text)': ", fragments: fragments)
    }

    @Test("Bad experiment order_by clauses are rejected, naming the clause", arguments: [
        ("start_time", ["cannot order experiments by 'start_time'", "creation_time, experiment_id, last_update_time, name"]),
        ("tags.team", ["cannot order experiments by 'tags.team'"]),
        ("metrics.loss DESC", ["cannot order experiments by 'metrics.loss'"]),
        ("name sideways", ["expected ASC or DESC after 'name'"]),
    ])
    func experimentOrderByErrors(text: String, fragments: [String]) throws {
        try expectError(
            orderByError(text, .experiments), prefix: "Invalid order_by clause '\(text)': ", fragments: fragments)
    }
}
