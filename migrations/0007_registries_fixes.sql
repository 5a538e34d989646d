-- labmesh instance schema, part 7: fixes to the registries of part 4.

-- Integer feature values are stored exactly: REAL holds 53 bits, so
-- counts and ids above 2^53 lost their last digits. Existing int values
-- move over (they were exact up to 2^53, so nothing more is lost).
ALTER TABLE artifact_feature_value ADD COLUMN value_int INTEGER;
UPDATE artifact_feature_value
   SET value_int = CAST(value_num AS INTEGER), value_num = NULL
 WHERE value_num IS NOT NULL
   AND feature_id IN (SELECT id FROM feature WHERE dtype IN ('int', 'list[int]'));
CREATE INDEX feature_value_int ON artifact_feature_value (feature_id, value_int)
    WHERE value_int IS NOT NULL;

-- Labels by type: validating against `label:<type>` loads one type's
-- names, and a misspelt type is told apart from an empty one by walking
-- the distinct types. (type) alone: bulk loads append to it in rowid order.
CREATE INDEX ulabel_type ON ulabel (type);
