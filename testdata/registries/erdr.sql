-- An example ЕРДР (the unified register of pre-trial investigations, КПСиСУ) for the check of §5:
-- the criminal and search cases, the people in their proceedings with their part, the
-- investigative and prosecutor's instructions (§22) and each criminal case's qualification. The
-- README's walkthrough "Answer the case checks of §5 from PostgreSQL" loads it, and
-- configs/adapters/erdr-postgres.yaml asks it; adapters/postgres and internal/cli test both.
--
-- The cases are the demo users' (signing/devpki) under bases 1 and 6, so that the walkthrough's
-- requests pass as they do against the demo registry; the people who are not demo users are
-- made up, with valid IINs.

CREATE TABLE erdr_cases (
  basis      smallint NOT NULL CHECK (basis IN (1, 6)), -- 1 criminal case, 6 search case
  erdr_no    text     NOT NULL,                         -- the number given by the КПСиСУ system
  status     text     NOT NULL,                         -- open, suspended, closed
  registered date     NOT NULL,
  PRIMARY KEY (basis, erdr_no)
);

-- The qualification of a criminal case, as the register writes it: article and part.
CREATE TABLE erdr_qualification (
  basis   smallint NOT NULL,
  erdr_no text     NOT NULL,
  article text     NOT NULL, -- "216 ч.1", "ч.2 ст.190"
  FOREIGN KEY (basis, erdr_no) REFERENCES erdr_cases
);

-- The people in a case's proceedings (§5, §21): the investigator or inquirer, the members of
-- the investigative group, the supervising prosecutor, the judge of a case sent to court.
CREATE TABLE erdr_participants (
  basis   smallint NOT NULL,
  erdr_no text     NOT NULL,
  iin     char(12) NOT NULL,
  role    text     NOT NULL, -- investigator, inquirer, group_member, supervising_prosecutor, judge, search_officer
  FOREIGN KEY (basis, erdr_no) REFERENCES erdr_cases
);

-- Investigative and prosecutor's instructions (§22): a request made under one names the
-- instruction's outgoing number, and its executor is in the case's proceedings for it.
CREATE TABLE erdr_instructions (
  basis          smallint NOT NULL,
  erdr_no        text     NOT NULL,
  instruction_no text     NOT NULL,
  executor_iin   char(12) NOT NULL,
  FOREIGN KEY (basis, erdr_no) REFERENCES erdr_cases
);

INSERT INTO erdr_cases (basis, erdr_no, status, registered) VALUES
  (1, '261500031000123', 'open',      '2026-03-02'),
  (1, '251500031000456', 'open',      '2025-11-17'),
  (1, '251900021000314', 'open',      '2025-06-09'),
  (1, '267100041000042', 'open',      '2026-01-20'),
  (1, '257100041000077', 'Suspended', '2025-04-14'),
  (1, '247500011000905', 'open',      '2024-09-30'),
  (1, '241500031000088', 'closed',    '2024-02-05'),
  (6, '261500031000777', 'open',      '2026-02-11'),
  (6, 'РД-257100041',    'open',      '2025-07-01'),
  (6, '247500011000906', 'open',      '2024-10-02');

INSERT INTO erdr_qualification (basis, erdr_no, article) VALUES
  (1, '261500031000123', '216 ч.1'),
  (1, '261500031000123', 'ч.2 ст.190'),
  (1, '251500031000456', 'ст. 245 ч. 2'),
  (1, '251900021000314', '188'),
  (1, '267100041000042', '218 ч.3'),
  (1, '257100041000077', '217'),
  (1, '247500011000905', '175'),
  (1, '241500031000088', '190');

INSERT INTO erdr_participants (basis, erdr_no, iin, role) VALUES
  (1, '261500031000123', '860421301550', 'investigator'),
  (1, '261500031000123', '910702402168', 'group_member'),
  (1, '261500031000123', '750312300458', 'supervising_prosecutor'),
  (1, '251500031000456', '860421301550', 'investigator'),
  (1, '251500031000456', '750312300458', 'supervising_prosecutor'),
  (1, '251900021000314', '820605401173', 'judge'),
  (1, '267100041000042', '900114302034', 'investigator'),
  (1, '257100041000077', '881129403324', 'Group_Member'),
  (1, '247500011000905', '790827304180', 'group_member'),
  (1, '241500031000088', '750312300458', 'supervising_prosecutor'),
  (6, '261500031000777', '750312300458', 'supervising_prosecutor'),
  (6, 'РД-257100041',    '881129403324', 'search_officer'),
  (6, '247500011000906', '790827304180', 'search_officer');

INSERT INTO erdr_instructions (basis, erdr_no, instruction_no, executor_iin) VALUES
  (1, '251500031000456', '2-15-25/1234', '831115303779'),
  (1, '251900021000314', '1-7/2025',     '831115303779');
