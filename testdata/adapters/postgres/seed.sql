-- Made-up people and organisations with valid IIN/BIN check digits. Subjects with no rows, for
-- NO_DATA: IIN 950707400057, BIN 990140000047.

INSERT INTO persons (iin, last_name, first_name, middle_name, birth_date, gender, address) VALUES
    ('850101300015', 'Асанов',    'Ерлан',  'Маратович',  '1985-01-01', 'male',   'г. Астана, ул. Кенесары, 12, кв. 4'),
    ('900512400028', 'Жумабаева', 'Айгерим', 'Сериковна', '1990-05-12', 'female', 'г. Алматы, пр. Абая, 101, кв. 17'),
    ('781130500033', 'Ким',       'Виктор',  NULL,        '1978-11-30', 'male',   NULL),
    ('010220600047', 'Нурланова', 'Дана',    'Ерлановна', '2001-02-20', 'female', 'г. Караганда, ул. Ерубаева, 5');

INSERT INTO vehicles (owner_id, plate, vin, make, model, year, registered_date, deregistered_date) VALUES
    ('850101300015', '123ABC01', 'XTA210990Y2765432', 'Toyota',  'Camry',   2018, '2019-03-14', NULL),
    ('850101300015', '777KZ02',  'JTDBR32E720012345', 'Lada',    'Granta',  2012, '2012-07-02', '2019-03-01'),
    ('900512400028', '045AAA02', 'KMHCT41BAEU123456', 'Hyundai', 'Accent',  2021, '2021-09-30', NULL),
    ('120340000014', '001ORG01', 'WDB9066331S123456', 'Mercedes-Benz', 'Sprinter', 2020, '2020-12-01', NULL);

INSERT INTO counter_checks (bin, inspection_no, inspection_date, inspector, result, assessed_amount, checked_at) VALUES
    ('120340000014', 'КП-2025-000117', '2025-04-08', 'ДГД по г. Астана', 'нарушения выявлены', 1250000.50, '2025-04-08 11:30:00+05'),
    ('120340000014', 'КП-2025-000342', '2025-10-21', 'ДГД по г. Астана', 'нарушений нет',      NULL,       '2025-10-21 09:00:00+05'),
    ('050840000027', 'КП-2024-001905', '2024-12-03', 'ДГД по г. Алматы', 'нарушения выявлены', 310000,     '2024-12-03 15:45:00+05');
