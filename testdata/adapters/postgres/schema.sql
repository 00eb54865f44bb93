-- A miniature source database for the postgres adapter's tests: three services of Appendix 2
-- (1 persons, 5 vehicles, 37 counter checks), shaped like the demo world's answers. The test
-- creates a fresh schema per run and sets search_path to it, so no table here names a schema.

CREATE TABLE persons (
    iin          text PRIMARY KEY CHECK (iin ~ '^\d{12}$'),
    last_name    text NOT NULL,
    first_name   text NOT NULL,
    middle_name  text,                -- NULL for people without a patronymic
    birth_date   date NOT NULL,
    gender       text NOT NULL CHECK (gender IN ('male', 'female')),
    citizenship  text NOT NULL DEFAULT 'KAZ',
    address      text
);

CREATE TABLE vehicles (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id           text NOT NULL CHECK (owner_id ~ '^\d{12}$'), -- IIN or BIN
    plate              text NOT NULL,
    vin                text NOT NULL,
    make               text NOT NULL,
    model              text NOT NULL,
    year               integer NOT NULL,
    registered_date    date NOT NULL,
    deregistered_date  date
);
CREATE INDEX vehicles_owner ON vehicles (owner_id);

CREATE TABLE counter_checks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bin              text NOT NULL CHECK (bin ~ '^\d{12}$'),
    inspection_no    text NOT NULL,
    inspection_date  date NOT NULL,
    inspector        text NOT NULL,
    result           text NOT NULL,
    assessed_amount  numeric(14, 2),  -- NULL when nothing was assessed
    checked_at       timestamptz NOT NULL
);
CREATE INDEX counter_checks_bin ON counter_checks (bin);
